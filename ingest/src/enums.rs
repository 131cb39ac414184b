//! Open enums: the values Entra documents today, plus `Unknown(String)` for whatever it adds tomorrow.
//!
//! Entra's enums evolve (`unknownFutureValue`, header-gated members, casing differences between Graph,
//! Event Hub and Log Analytics). Parsing is case-insensitive and never fails: an unseen value is kept
//! verbatim in `Unknown` so it still reaches the alert and the analyst.

use serde::{Serialize, Serializer};

/// Declares an open enum: `Name { Variant => "wireName", ... }`, with `parse`, `as_str` and `Serialize`.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this version does not know, kept as it was written.
            Unknown(String),
        }

        impl $name {
            /// Case-insensitive parse; unknown values are kept in `Unknown`.
            pub fn parse(raw: &str) -> Self {
                let trimmed = raw.trim();
                $(if trimmed.eq_ignore_ascii_case($wire) { return Self::$variant; })+
                Self::Unknown(trimmed.to_owned())
            }

            /// The canonical Graph spelling (or the unknown value as written).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Unknown(raw) => raw,
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Ok(Self::parse(&raw))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

open_enum!(
    /// Which Entra sign-in log a sign-in came from (Graph `signInEventTypes`, Event Hub `category`).
    SignInEventType {
        InteractiveUser => "interactiveUser",
        NonInteractiveUser => "nonInteractiveUser",
        ServicePrincipal => "servicePrincipal",
        ManagedIdentity => "managedIdentity",
    }
);

open_enum!(
    /// `authenticationRequirement`: the highest requirement across the sign-in's steps.
    AuthenticationRequirement {
        SingleFactor => "singleFactorAuthentication",
        MultiFactor => "multiFactorAuthentication",
    }
);

open_enum!(
    /// Risk level of a sign-in, a risky user or a detection; `hidden` on tenants without P2.
    RiskLevel {
        None => "none",
        Low => "low",
        Medium => "medium",
        High => "high",
        Hidden => "hidden",
        UnknownFutureValue => "unknownFutureValue",
    }
);

open_enum!(
    /// Risk state of a sign-in, a risky user or a detection.
    RiskState {
        None => "none",
        ConfirmedSafe => "confirmedSafe",
        Remediated => "remediated",
        Dismissed => "dismissed",
        AtRisk => "atRisk",
        ConfirmedCompromised => "confirmedCompromised",
        UnknownFutureValue => "unknownFutureValue",
    }
);

open_enum!(
    /// `crossTenantAccessType`: `serviceProvider` marks a CSP / GDAP partner technician.
    CrossTenantAccessType {
        None => "none",
        B2bCollaboration => "b2bCollaboration",
        B2bDirectConnect => "b2bDirectConnect",
        MicrosoftSupport => "microsoftSupport",
        ServiceProvider => "serviceProvider",
        Passthrough => "passthrough",
        UnknownFutureValue => "unknownFutureValue",
    }
);

open_enum!(
    /// `userType` (`member` in Graph, `Member` in Event Hub and Log Analytics).
    UserType {
        Member => "member",
        Guest => "guest",
        UnknownFutureValue => "unknownFutureValue",
    }
);

open_enum!(
    /// `authenticationProtocol` (beta): `ropc` and `deviceCode` matter to detectors.
    AuthenticationProtocol {
        None => "none",
        OAuth2 => "oAuth2",
        Ropc => "ropc",
        WsFederation => "wsFederation",
        Saml20 => "saml20",
        DeviceCode => "deviceCode",
        AuthenticationTransfer => "authenticationTransfer",
        NativeAuth => "nativeAuth",
        UnknownFutureValue => "unknownFutureValue",
    }
);

open_enum!(
    /// `conditionalAccessStatus` of a sign-in.
    ConditionalAccessStatus {
        Success => "success",
        Failure => "failure",
        NotApplied => "notApplied",
        UnknownFutureValue => "unknownFutureValue",
    }
);

open_enum!(
    /// `result` of a directory audit.
    AuditResult {
        Success => "success",
        Failure => "failure",
        Timeout => "timeout",
        UnknownFutureValue => "unknownFutureValue",
    }
);

open_enum!(
    /// `detectionTimingType` of a risk detection: `offline` ones arrive hours or days late.
    DetectionTimingType {
        NotDefined => "notDefined",
        Realtime => "realtime",
        NearRealtime => "nearRealtime",
        Offline => "offline",
        UnknownFutureValue => "unknownFutureValue",
    }
);

impl RiskLevel {
    /// Medium or high; `hidden` (non-P2 tenants hide the level) counts as medium.
    pub fn is_medium_or_high(&self) -> bool {
        matches!(self, Self::Medium | Self::High | Self::Hidden)
    }
}

impl RiskState {
    /// The states that still call for action.
    pub fn is_active(&self) -> bool {
        matches!(self, Self::AtRisk | Self::ConfirmedCompromised)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_case_insensitive_and_keeps_unknown_values() {
        assert_eq!(UserType::parse("Member"), UserType::Member);
        assert_eq!(UserType::parse("member"), UserType::Member);
        assert_eq!(
            CrossTenantAccessType::parse("serviceProvider"),
            CrossTenantAccessType::ServiceProvider
        );
        let odd = RiskState::parse("m365DAdminDismissedDetection");
        assert_eq!(
            odd,
            RiskState::Unknown("m365DAdminDismissedDetection".into())
        );
        assert_eq!(odd.as_str(), "m365DAdminDismissedDetection");
        assert_eq!(
            serde_json::to_string(&RiskLevel::Hidden).unwrap(),
            "\"hidden\""
        );
    }
}
