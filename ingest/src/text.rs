//! [`Text`]: the string type of event fields.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

/// The text of an event field: as big as a `String` (and `Option<Text>` too), but text of up to
/// 24 bytes is held inline. That covers IPv4 addresses, countries, cities, operating systems,
/// browsers, client apps, authentication methods and many names, which are about half the strings
/// of a sign-in; GUIDs (36 bytes), UPNs and user agents stay on the heap. Half the fields of an
/// event then need no allocation of their own, which is what keeps a replay's events small
/// (docs/PERFORMANCE-RESULTS.md has the measurement).
///
/// It reads as a `str` (`Deref`), compares with `str` and `String`, and serialises as a string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(compact_str::CompactString);

impl Text {
    pub fn new() -> Text {
        Text(compact_str::CompactString::const_new(""))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// `s` in ASCII lower case, without an intermediate `String`.
    pub fn ascii_lowercase(s: &str) -> Text {
        let mut t = Text::from(s);
        t.0.make_ascii_lowercase();
        t
    }

    /// Whether the text is held inline (no heap allocation).
    pub fn is_inline(&self) -> bool {
        !self.0.is_heap_allocated()
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::new()
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Text {
        Text(compact_str::CompactString::new(s))
    }
}

impl From<&String> for Text {
    fn from(s: &String) -> Text {
        Text::from(s.as_str())
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text(compact_str::CompactString::from(s))
    }
}

impl From<std::borrow::Cow<'_, str>> for Text {
    fn from(s: std::borrow::Cow<'_, str>) -> Text {
        match s {
            std::borrow::Cow::Borrowed(s) => Text::from(s),
            std::borrow::Cow::Owned(s) => Text::from(s),
        }
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.0.into_string()
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Text> for String {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Text, E> {
                Ok(Text::from(s))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Text, E> {
                Ok(Text::from(s))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_inline_guids_are_not() {
        for short in [
            "203.0.113.250",
            "Nuremberg",
            "Windows10",
            "Exchange ActiveSync",
        ] {
            assert!(Text::from(short).is_inline(), "{short}");
            assert!(Text::from(short.to_string()).is_inline(), "{short}");
        }
        assert!(Text::from("x".repeat(24)).is_inline());
        assert!(!Text::from("x".repeat(25)).is_inline());
        let guid = Text::from("7f0ddfd5-0ac4-40ab-a688-a16250b50aba");
        assert!(!guid.is_inline());
        assert_eq!(&*guid, "7f0ddfd5-0ac4-40ab-a688-a16250b50aba");
        assert_eq!(
            std::mem::size_of::<Option<Text>>(),
            std::mem::size_of::<String>()
        );
    }

    #[test]
    fn lower_case_copy() {
        assert_eq!(
            Text::ascii_lowercase("7F0DDFD5-0AC4-40AB-A688-A16250B50ABA"),
            "7f0ddfd5-0ac4-40ab-a688-a16250b50aba"
        );
        assert_eq!(Text::ascii_lowercase("Ünïcode ABC"), "Ünïcode abc");
    }

    #[test]
    fn reads_compares_and_serialises_as_a_string() {
        let t = Text::from(String::from("Nuremberg"));
        assert_eq!(t, "Nuremberg");
        assert_eq!("Nuremberg", t);
        assert_eq!(String::from("Nuremberg"), t);
        assert_eq!(t.to_ascii_lowercase(), "nuremberg");
        assert_eq!(format!("{t} {t:?}"), "Nuremberg \"Nuremberg\"");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"Nuremberg\"");
        let back: Text = serde_json::from_str("\"Nürnberg \\u00e9\"").unwrap();
        assert_eq!(back, "Nürnberg é");
        assert_eq!(Text::default(), "");
    }
}
