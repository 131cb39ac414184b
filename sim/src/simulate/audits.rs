//! Directory audit records the world writes, one constructor per activity, shaped as Entra writes
//! them (targets, `modifiedProperties` as JSON text, the service that logged them). Used by both
//! the background activity and the attack stories.

use super::catalog::{ROLES, ua};
use super::records::{Actor, Audit, Target};
use super::rng::{Guid, Rng, Ticks};
use super::world::{AcctId, DevId, World};

/// JSON text of a string, as `modifiedProperties` values are written (`"\"True\""`).
pub fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// JSON text of a one-element list of strings (`["Senior Analyst"]`).
fn ql(s: &str) -> String {
    format!("[{}]", q(s))
}

fn prop(
    name: &str,
    old: Option<String>,
    new: Option<String>,
) -> (String, Option<String>, Option<String>) {
    (name.to_owned(), old, new)
}

pub fn user_target(w: &World, a: AcctId) -> Target {
    let acc = &w.accounts[a];
    Target {
        id: acc.id.to_string(),
        display: None,
        kind: "User",
        upn: Some(acc.upn.clone()),
        props: Vec::new(),
    }
}

pub fn raw_user_target(id: Guid, upn: &str) -> Target {
    Target {
        id: id.to_string(),
        display: None,
        kind: "User",
        upn: Some(upn.to_owned()),
        props: Vec::new(),
    }
}

/// The object id of a role in a tenant (it differs per tenant; the template id does not).
pub fn role_object_id(w: &World, tenant: usize, role: usize) -> Guid {
    w.stream("role-object", w.tenants[tenant].id.0 ^ role as u128)
        .guid()
}

/// A first-party service principal's object id in a tenant (MS-PIM, Device Registration Service...).
pub fn service_sp(w: &World, tenant: usize, name: &str) -> Guid {
    w.stream(name, w.tenants[tenant].id.0).guid()
}

pub fn ms_pim(w: &World, tenant: usize) -> Actor {
    Actor::App {
        name: "MS-PIM",
        sp: service_sp(w, tenant, "MS-PIM"),
    }
}

fn role_target(w: &World, tenant: usize, role: usize, by_template: bool) -> Target {
    let id = if by_template {
        ROLES[role].template.to_owned()
    } else {
        role_object_id(w, tenant, role).to_string()
    };
    Target {
        id,
        display: Some(ROLES[role].name.to_owned()),
        kind: "Role",
        upn: None,
        props: Vec::new(),
    }
}

fn role_props(
    w: &World,
    tenant: usize,
    role: usize,
    removed: bool,
) -> Vec<(String, Option<String>, Option<String>)> {
    let r = ROLES[role];
    let values = [
        ("Role.ObjectID", role_object_id(w, tenant, role).to_string()),
        ("Role.DisplayName", r.name.to_owned()),
        ("Role.TemplateId", r.template.to_owned()),
        ("Role.WellKnownObjectName", r.well_known.to_owned()),
    ];
    values
        .into_iter()
        .map(|(name, v)| {
            if removed {
                prop(name, Some(q(&v)), None)
            } else {
                prop(name, None, Some(q(&v)))
            }
        })
        .collect()
}

/// `Add member to role` (and its PIM and removal variants) as the Core Directory writes it: the
/// member first, with the role in `modifiedProperties`, then the role.
#[allow(clippy::too_many_arguments)]
pub fn role_member(
    w: &World,
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    mut member: Target,
    role: usize,
    activity: &'static str,
) -> Audit {
    let removed = activity.starts_with("Remove");
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        activity,
        "RoleManagement",
        "Core Directory",
        if removed { "Unassign" } else { "Assign" },
    );
    member.props = role_props(w, tenant, role, removed);
    a.targets = vec![member, role_target(w, tenant, role, false)];
    a
}

/// A PIM-service record (`... (PIM activation)`, `... in PIM completed (permanent)`): the role
/// (named by its template) first, then the member.
#[allow(clippy::too_many_arguments)]
pub fn pim_record(
    w: &World,
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    member: Target,
    role: usize,
    activity: &'static str,
    reason: &'static str,
) -> Audit {
    let removed = activity.starts_with("Remove");
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        activity,
        "RoleManagement",
        "PIM",
        if removed { "Delete" } else { "Add" },
    );
    a.targets = vec![role_target(w, tenant, role, true), member];
    a.reason = reason;
    a
}

/// A PIM activation of an eligible admin and its expiry: the PIM records and the Core Directory
/// changes MS-PIM makes. None of it is an assignment outside PIM.
pub fn pim_activation(
    w: &World,
    rng: &mut Rng,
    t: Ticks,
    admin: AcctId,
    role: usize,
    hours: i64,
    out: &mut Vec<Audit>,
) {
    let tenant = w.accounts[admin].tenant;
    let me = Actor::User {
        account: admin,
        net: None,
    };
    out.push(pim_record(
        w,
        rng,
        t,
        tenant,
        me,
        user_target(w, admin),
        role,
        "Add member to role requested (PIM activation)",
        "Ticket: routine administration",
    ));
    let done = t + rng.range(2, 20) * super::rng::SEC;
    out.push(pim_record(
        w,
        rng,
        done,
        tenant,
        ms_pim(w, tenant),
        user_target(w, admin),
        role,
        "Add member to role completed (PIM activation)",
        "Activated for the requested duration",
    ));
    out.push(role_member(
        w,
        rng,
        done + super::rng::SEC,
        tenant,
        ms_pim(w, tenant),
        user_target(w, admin),
        role,
        "Add member to role",
    ));
    let end = done + hours * super::rng::HOUR;
    if end < w.end {
        out.push(pim_record(
            w,
            rng,
            end,
            tenant,
            ms_pim(w, tenant),
            user_target(w, admin),
            role,
            "Remove member from role (PIM activation expired)",
            "Activation expired",
        ));
        out.push(role_member(
            w,
            rng,
            end + super::rng::SEC,
            tenant,
            ms_pim(w, tenant),
            user_target(w, admin),
            role,
            "Remove member from role",
        ));
    }
}

/// What an `Update user` changed.
#[derive(Debug, Clone, Copy)]
pub enum UserChange {
    JobTitle,
    Department,
    StrongAuthenticationMethod,
    StrongAuthenticationPhoneAppDetail,
    LastDirSync,
}

pub fn update_user(
    w: &World,
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    target: AcctId,
    change: UserChange,
) -> Audit {
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        "Update user",
        "UserManagement",
        "Core Directory",
        "Update",
    );
    let mut tg = user_target(w, target);
    let (name, old, new) = match change {
        UserChange::JobTitle => ("JobTitle", ql("Analyst"), ql("Senior Analyst")),
        UserChange::Department => ("Department", ql("Operations"), ql("IT Operations")),
        UserChange::StrongAuthenticationMethod => (
            "StrongAuthenticationMethod",
            "[{\"MethodType\":6,\"Default\":true}]".to_owned(),
            "[{\"MethodType\":6,\"Default\":false},{\"MethodType\":7,\"Default\":true}]".to_owned(),
        ),
        UserChange::StrongAuthenticationPhoneAppDetail => (
            "StrongAuthenticationPhoneAppDetail",
            "[]".to_owned(),
            format!(
                "[{{\"DeviceName\":\"SM-A546B\",\"DeviceToken\":\"{}\",\"DeviceTag\":\"SoftwareTokenActivated\",\"PhoneAppVersion\":\"6.2410.6950\",\"OathTokenTimeDrift\":0,\"DeviceId\":\"00000000-0000-0000-0000-000000000000\",\"Id\":\"{}\",\"TimeInterval\":0,\"AuthenticationType\":3,\"NotificationType\":4,\"LastAuthenticatedTimestamp\":\"2026-10-01T00:00:00Z\",\"AuthenticatorFlavor\":null,\"HashFunction\":null,\"TenantDeviceId\":null,\"SecuredPartitionId\":0,\"SecuredKeyId\":0}}]",
                rng.hex(24),
                rng.guid()
            ),
        ),
        UserChange::LastDirSync => (
            "LastDirSyncTime",
            ql("2026-09-30T22:14:05Z"),
            ql("2026-10-01T22:14:07Z"),
        ),
    };
    tg.props = vec![
        prop(name, Some(old), Some(new)),
        prop("Included Updated Properties", None, Some(q(name))),
        prop("TargetId.UserType", None, Some(q("Member"))),
    ];
    a.targets = vec![tg];
    a.details = vec![("UserType", "Member".to_owned())];
    a
}

/// `Add user`: a new account (`id`, `upn`) created by `actor`.
pub fn add_user(
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    id: Guid,
    upn: &str,
    display: &str,
) -> Audit {
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        "Add user",
        "UserManagement",
        "Core Directory",
        "Add",
    );
    let mut tg = raw_user_target(id, upn);
    tg.props = vec![
        prop("AccountEnabled", Some("[]".into()), Some("[true]".into())),
        prop("DisplayName", Some("[]".into()), Some(ql(display))),
        prop("UserPrincipalName", Some("[]".into()), Some(ql(upn))),
        prop("UserType", Some("[]".into()), Some(ql("Member"))),
        prop(
            "Included Updated Properties",
            None,
            Some(q(
                "AccountEnabled, DisplayName, UserPrincipalName, UserType",
            )),
        ),
    ];
    a.targets = vec![tg];
    a.details = vec![("UserType", "Member".to_owned())];
    a
}

/// `Invite external user`: a B2B invitation of `email`.
pub fn invite(
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    id: Guid,
    email: &str,
    tenant_domain: &str,
) -> Audit {
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        "Invite external user",
        "UserManagement",
        "Invited Users",
        "Add",
    );
    let ext = format!("{}#EXT#@{}", email.replace('@', "_"), tenant_domain);
    let mut tg = raw_user_target(id, &ext);
    tg.display = Some(email.to_owned());
    a.targets = vec![tg];
    a.details = vec![
        ("invitedUserEmailAddress", email.to_owned()),
        ("oid", id.to_string()),
    ];
    a
}

pub fn disable_account(
    w: &World,
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    target: AcctId,
) -> Audit {
    account_enabled(w, rng, t, tenant, actor, target, false)
}

/// `Enable account`: an admin turns a disabled account back on (`AccountEnabled` false → true).
pub fn enable_account(
    w: &World,
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    target: AcctId,
) -> Audit {
    account_enabled(w, rng, t, tenant, actor, target, true)
}

/// `Disable account` / `Enable account`: `AccountEnabled` turned to `enabled`.
fn account_enabled(
    w: &World,
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    target: AcctId,
    enabled: bool,
) -> Audit {
    let activity = if enabled {
        "Enable account"
    } else {
        "Disable account"
    };
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        activity,
        "UserManagement",
        "Core Directory",
        "Update",
    );
    let mut tg = user_target(w, target);
    tg.props = vec![
        prop(
            "AccountEnabled",
            Some(format!("[{}]", !enabled)),
            Some(format!("[{enabled}]")),
        ),
        prop(
            "Included Updated Properties",
            None,
            Some(q("AccountEnabled")),
        ),
    ];
    a.targets = vec![tg];
    a
}

/// `Delete user` (a soft delete: `Is Hard Deleted` false), as the Event Hub record of one shows.
pub fn delete_user(
    w: &World,
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    target: AcctId,
) -> Audit {
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        "Delete user",
        "UserManagement",
        "Core Directory",
        "Delete",
    );
    let mut tg = user_target(w, target);
    tg.props = vec![prop("Is Hard Deleted", None, Some(q("False")))];
    a.targets = vec![tg];
    a
}

pub fn reset_password(
    w: &World,
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    target: AcctId,
) -> Audit {
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        "Reset user password",
        "UserManagement",
        "Core Directory",
        "Reset",
    );
    a.targets = vec![user_target(w, target)];
    a
}

pub fn change_password_self(
    w: &World,
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    user: AcctId,
    net: Option<usize>,
) -> Audit {
    let actor = Actor::User { account: user, net };
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        "Change password (self-service)",
        "UserManagement",
        "Self-service Password Management",
        "Update",
    );
    a.targets = vec![user_target(w, user)];
    a.reason = "User changed their password";
    a
}

/// `Add member to group` / `Remove member from group`: the user first, with the group in
/// `modifiedProperties`, then the group.
#[allow(clippy::too_many_arguments)]
pub fn group_member(
    w: &World,
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    member: Target,
    group: usize,
    add: bool,
) -> Audit {
    let g = &w.groups[group];
    let (activity, op) = if add {
        ("Add member to group", "Assign")
    } else {
        ("Remove member from group", "Unassign")
    };
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        activity,
        "GroupManagement",
        "Core Directory",
        op,
    );
    let mut tg = member;
    let v = |s: String| {
        if add {
            (None, Some(q(&s)))
        } else {
            (Some(q(&s)), None)
        }
    };
    let (o1, n1) = v(g.id.to_string());
    let (o2, n2) = v(g.name.clone());
    tg.props = vec![
        prop("Group.ObjectID", o1, n1),
        prop("Group.DisplayName", o2, n2),
        prop("Group.WellKnownObjectName", None, None),
    ];
    let group_target = Target {
        id: g.id.to_string(),
        display: Some(g.name.clone()),
        kind: "Group",
        upn: None,
        props: Vec::new(),
    };
    a.targets = vec![tg, group_target];
    a
}

/// `User registered security info`, `Admin registered security info`, ...: the Authentication
/// Methods service.
#[allow(clippy::too_many_arguments)]
pub fn security_info(
    w: &World,
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    target: AcctId,
    activity: &'static str,
    reason: &'static str,
) -> Audit {
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        activity,
        "UserManagement",
        "Authentication Methods",
        if activity.contains("deleted") {
            "Delete"
        } else {
            "Add"
        },
    );
    a.targets = vec![user_target(w, target)];
    a.reason = reason;
    a
}

/// `Update user` by the MFA service after a registration (regular users do this all the time).
pub fn mfa_service_update(
    w: &World,
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    target: AcctId,
) -> Audit {
    let actor = Actor::App {
        name: "Azure MFA StrongAuthenticationService",
        sp: service_sp(w, tenant, "mfa-service"),
    };
    update_user(
        w,
        rng,
        t,
        tenant,
        actor,
        target,
        UserChange::StrongAuthenticationMethod,
    )
}

/// The consent a user or admin gave an application.
#[derive(Debug, Clone, Copy)]
pub struct Consent {
    pub app: &'static str,
    pub scopes: &'static str,
    pub admin: bool,
    pub all_principals: bool,
    pub app_only: bool,
}

/// `Consent to application` (and the delegated grant it makes): the service principal consented
/// to is `sp`. Returns both records.
pub fn consent(
    w: &World,
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    sp: Guid,
    c: Consent,
) -> Vec<Audit> {
    let user = match &actor {
        Actor::User { account, .. } | Actor::IdOnly { account, .. } => {
            w.accounts[*account].id.to_string()
        }
        Actor::App { .. } => String::new(),
    };
    let flag = |b: bool| q(if b { "True" } else { "False" });
    let consent_type = if c.all_principals {
        "AllPrincipals"
    } else {
        "Principal"
    };
    let principal = if c.all_principals {
        String::new()
    } else {
        user
    };
    let permissions = format!(
        "[] => [[Id: {}, ClientId: {sp}, PrincipalId: {principal}, ResourceId: {}, ConsentType: {consent_type}, Scope:  {}, CreatedDateTime: , LastModifiedDateTime ]]; ",
        rng.text(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
            43
        ),
        w.tenants[tenant].graph_sp,
        c.scopes
    );
    let mut first = Audit::new(
        rng,
        t,
        tenant,
        actor.clone(),
        "Consent to application",
        "ApplicationManagement",
        "Core Directory",
        "Assign",
    );
    let app_id = rng.guid();
    first.targets = vec![Target {
        id: sp.to_string(),
        display: Some(c.app.to_owned()),
        kind: "ServicePrincipal",
        upn: None,
        props: vec![
            prop("ConsentContext.IsAdminConsent", None, Some(flag(c.admin))),
            prop("ConsentContext.IsAppOnly", None, Some(flag(c.app_only))),
            prop(
                "ConsentContext.OnBehalfOfAll",
                None,
                Some(flag(c.all_principals)),
            ),
            prop(
                "ConsentContext.Tags",
                None,
                Some(q("WindowsAzureActiveDirectoryIntegratedApp")),
            ),
            prop("ConsentAction.Permissions", None, Some(q(&permissions))),
            prop(
                "TargetId.ServicePrincipalNames",
                None,
                Some(q(&app_id.to_string())),
            ),
        ],
    }];
    first.details = vec![
        ("User-Agent", ua::EDGE_WIN.to_owned()),
        ("AppId", app_id.to_string()),
    ];
    let mut grant = Audit::new(
        rng,
        t + super::rng::SEC,
        tenant,
        actor,
        "Add delegated permission grant",
        "ApplicationManagement",
        "Core Directory",
        "Assign",
    );
    grant.targets = vec![
        Target {
            id: w.tenants[tenant].graph_sp.to_string(),
            display: Some("Microsoft Graph".to_owned()),
            kind: "ServicePrincipal",
            upn: None,
            props: vec![
                prop(
                    "DelegatedPermissionGrant.Scope",
                    None,
                    Some(q(&format!(" {}", c.scopes))),
                ),
                prop(
                    "DelegatedPermissionGrant.ConsentType",
                    None,
                    Some(q(consent_type)),
                ),
            ],
        },
        Target {
            id: sp.to_string(),
            display: None,
            kind: "ServicePrincipal",
            upn: None,
            props: Vec::new(),
        },
    ];
    vec![first, grant]
}

pub fn update_device(w: &World, rng: &mut Rng, t: Ticks, tenant: usize, device: DevId) -> Audit {
    let actor = Actor::App {
        name: "Device Registration Service",
        sp: service_sp(w, tenant, "drs"),
    };
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        "Update device",
        "Device",
        "Core Directory",
        "Update",
    );
    let d = &w.devices[device];
    a.targets = vec![Target {
        id: d.id.map(|g| g.to_string()).unwrap_or_default(),
        display: Some(d.name.clone()),
        kind: "Device",
        upn: None,
        props: vec![
            prop("ApproximateLastLogonTimestamp", None, Some(q("lastLogon"))),
            prop(
                "Included Updated Properties",
                None,
                Some(q("ApproximateLastLogonTimestamp")),
            ),
        ],
    }];
    a
}

/// A Conditional Access policy as Graph's `conditionalAccessPolicy` resource: the shape the
/// `ConditionalAccessPolicy` modified property of a Conditional Access audit carries, old and new
/// (Microsoft Learn "Use audit logs to troubleshoot Conditional Access policy changes").
#[derive(Debug, Clone)]
pub struct CaPolicy {
    pub id: Guid,
    pub name: String,
    /// `enabled`, `disabled` or `enabledForReportingButNotEnforced`.
    pub state: &'static str,
    pub include_users: Vec<String>,
    /// Role template ids.
    pub include_roles: Vec<String>,
    pub exclude_users: Vec<String>,
    pub exclude_groups: Vec<String>,
    /// `OR` or `AND`.
    pub operator: &'static str,
    pub controls: Vec<&'static str>,
    pub created: Ticks,
    pub modified: Ticks,
}

impl CaPolicy {
    /// The policy as the audit's JSON text.
    pub fn json(&self) -> String {
        serde_json::json!({
            "id": self.id.to_string(),
            "displayName": self.name,
            "createdDateTime": super::render::iso7(self.created, "+00:00"),
            "modifiedDateTime": super::render::iso7(self.modified, "+00:00"),
            "state": self.state,
            "conditions": {
                "applications": {
                    "includeApplications": ["All"],
                    "excludeApplications": [],
                    "includeUserActions": [],
                    "includeAuthenticationContextClassReferences": [],
                    "applicationFilter": null
                },
                "users": {
                    "includeUsers": self.include_users,
                    "excludeUsers": self.exclude_users,
                    "includeGroups": [],
                    "excludeGroups": self.exclude_groups,
                    "includeRoles": self.include_roles,
                    "excludeRoles": [],
                    "includeGuestsOrExternalUsers": null,
                    "excludeGuestsOrExternalUsers": null
                },
                "platforms": null,
                "locations": null,
                "userRiskLevels": [],
                "signInRiskLevels": [],
                "clientAppTypes": ["all"],
                "servicePrincipalRiskLevels": []
            },
            "grantControls": {
                "operator": self.operator,
                "builtInControls": self.controls,
                "customAuthenticationFactors": [],
                "termsOfUse": [],
                "authenticationStrength": null
            },
            "sessionControls": null
        })
        .to_string()
    }
}

/// A Conditional Access audit (service Conditional Access, category Policy): `Update
/// Conditional Access policy` with the policy before and after, or `Delete ...` with the old
/// value only, as the service writes them (lower-case activity names, the policy as the target).
pub fn ca_policy(
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    old: &CaPolicy,
    new: Option<&CaPolicy>,
) -> Audit {
    let (activity, op) = match new {
        Some(_) => ("Update conditional access policy", "Update"),
        None => ("Delete conditional access policy", "Delete"),
    };
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        activity,
        "Policy",
        "Conditional Access",
        op,
    );
    let shown = new.unwrap_or(old);
    a.targets = vec![Target {
        id: shown.id.to_string(),
        display: Some(shown.name.clone()),
        kind: "Policy",
        upn: None,
        props: vec![prop(
            "ConditionalAccessPolicy",
            Some(old.json()),
            new.map(CaPolicy::json),
        )],
    }];
    a.details = vec![("Category", "Conditional Access".to_owned())];
    a
}

/// A `KeyDescription` entry: one password (client secret) credential.
pub fn secret_key(rng: &mut Rng, name: &str) -> String {
    format!(
        "[KeyIdentifier={},KeyType=Password,KeyUsage=Verify,DisplayName={name}]",
        rng.guid()
    )
}

/// A credential added to (or removed from) an application or service principal, as the Core
/// Directory writes it: `Update application – Certificates and secrets management` on the
/// application object, or `Add service principal credentials` / `Remove service principal
/// credentials` on the service principal, with the key list before and after in
/// `KeyDescription` and the app id in `additionalDetails`.
#[allow(clippy::too_many_arguments)]
pub fn app_credentials(
    rng: &mut Rng,
    t: Ticks,
    tenant: usize,
    actor: Actor,
    activity: &'static str,
    (object_id, app_id, name): (Guid, Guid, &str),
    old: &[String],
    new: &[String],
) -> Audit {
    let on_sp = activity.contains("service principal");
    let op = if activity.starts_with("Remove") {
        "Delete"
    } else if activity.starts_with("Add") {
        "Add"
    } else {
        "Update"
    };
    let mut a = Audit::new(
        rng,
        t,
        tenant,
        actor,
        activity,
        "ApplicationManagement",
        "Core Directory",
        op,
    );
    let list = |keys: &[String]| serde_json::to_string(keys).unwrap_or_default();
    a.targets = vec![Target {
        id: object_id.to_string(),
        display: Some(name.to_owned()),
        kind: if on_sp {
            "ServicePrincipal"
        } else {
            "Application"
        },
        upn: None,
        props: vec![
            prop("KeyDescription", Some(list(old)), Some(list(new))),
            prop(
                "Included Updated Properties",
                None,
                Some(q("KeyDescription")),
            ),
        ],
    }];
    a.details = vec![
        ("User-Agent", ua::EDGE_WIN.to_owned()),
        ("AppId", app_id.to_string()),
    ];
    a
}
