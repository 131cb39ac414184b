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
        !self.0.is_heap_allocated() && self.0.as_static_str().is_none()
    }

    /// Whether the text is shared ([`Text::shared`]): no allocation of its own.
    pub fn is_shared(&self) -> bool {
        self.0.as_static_str().is_some()
    }

    /// Heap bytes this text holds on its own, with the allocator's rounding: none when inline or
    /// shared.
    pub fn heap_bytes(&self) -> usize {
        if self.0.is_heap_allocated() {
            allocation(self.0.capacity())
        } else {
            0
        }
    }

    /// `s` as text shared with every other event that holds the same value: for fields of few
    /// distinct values that are too long to be held inline (tenant, user and app ids, names, user
    /// agents, failure reasons). The first time a value is seen on a thread it is copied once and
    /// kept for the life of the process; later events point at that copy instead of allocating
    /// their own. What is kept is bounded ([`SHARED_TEXT_BUDGET`] for the whole process); past it,
    /// values get their own allocation as [`Text::from`] gives them. Reads exactly as
    /// `Text::from(s)`.
    pub fn shared(s: &str) -> Text {
        if s.len() <= INLINE {
            return Text::from(s);
        }
        match shared::lookup(s) {
            Some(kept) => Text(compact_str::CompactString::const_new(kept)),
            None => Text::from(s),
        }
    }

    /// [`Text::shared`] of `s` in ASCII lower case.
    pub fn shared_lowercase(s: &str) -> Text {
        if !s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Text::shared(s);
        }
        if s.len() <= INLINE {
            return Text::ascii_lowercase(s);
        }
        Text::shared(&s.to_ascii_lowercase())
    }
}

/// Bytes of text held inline.
const INLINE: usize = 24;

/// The bytes the allocator hands out for a request of `n`: 8 bytes of header, rounded up to 16,
/// at least 32 (glibc's malloc).
pub fn allocation(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).div_ceil(16).max(2) * 16
    }
}

/// Bytes the whole process may keep for [`Text::shared`] values (their text and their slot in the
/// per-thread tables), over every thread, for its life.
pub const SHARED_TEXT_BUDGET: usize = 64 << 20;

/// The per-thread tables of shared text.
mod shared {
    use std::cell::RefCell;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use crate::hash::WordHasher;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Bytes kept so far, over every thread.
    static KEPT: AtomicUsize = AtomicUsize::new(0);

    /// What one value costs besides its text: its slot in a table, with the table's spare room.
    const SLOT: usize = 32;

    thread_local! {
        static TABLE: RefCell<HashSet<&'static str, Seeded>> =
            RefCell::new(HashSet::with_hasher(Seeded::new()));
    }

    /// The kept copy of `s`, made now if there is budget left; `None` when there is not.
    pub(super) fn lookup(s: &str) -> Option<&'static str> {
        TABLE.with(|table| {
            let mut table = table.borrow_mut();
            if let Some(kept) = table.get(s) {
                return Some(*kept);
            }
            let cost = super::allocation(s.len()) + SLOT;
            let taken = KEPT.fetch_add(cost, Ordering::Relaxed);
            if taken + cost > super::SHARED_TEXT_BUDGET {
                KEPT.fetch_sub(cost, Ordering::Relaxed);
                return None;
            }
            // Kept for the life of the process, by design: bounded by the budget above.
            let kept: &'static str = Box::leak(s.to_owned().into_boxed_str());
            table.insert(kept);
            Some(kept)
        })
    }

    /// Each table's hash, from a seed drawn per table: the values come from the logs, so the
    /// table layout must not be predictable from outside; SipHash would cost more than the
    /// allocation it saves.
    #[derive(Clone, Copy)]
    pub(super) struct Seeded(u64);

    impl Seeded {
        fn new() -> Seeded {
            Seeded(WordHasher::random_seed())
        }
    }

    impl BuildHasher for Seeded {
        type Hasher = WordHasher;
        fn build_hasher(&self) -> WordHasher {
            WordHasher::with_seed(self.0)
        }
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
        match in_runs::form(self) {
            Some(form) => serde::Serialize::serialize(&form, s),
            None => s.serialize_str(self.as_str()),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        if in_runs::reading() {
            let form: in_runs::FormIn<'de> = serde::Deserialize::deserialize(d)?;
            return in_runs::resolve(form).map_err(serde::de::Error::custom);
        }
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

/// How text is written in a replay's sorted runs (`ordered::spill`), which this process writes and
/// reads back itself: a shared value ([`Text::shared`]) is written in full the first time a run
/// meets it and by its number in the run after that, and read back shared. A run is then about
/// half as large, and reading it back allocates only the text of few repeats (ids, values).
///
/// The form holds only inside [`in_runs::with`], on its thread; everywhere else (alerts, snapshots,
/// JSON) text is a plain string.
pub(crate) mod in_runs {
    use std::borrow::Cow;
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::hash::BuildHasherDefault;

    use super::Text;
    use crate::hash::WordHasher;

    /// The shared values a run has met so far.
    #[derive(Debug, Default)]
    pub(crate) enum Codec {
        #[default]
        Idle,
        /// Writing: each shared value's number, by the address and length of its kept copy.
        Writing(HashMap<(usize, usize), u32, BuildHasherDefault<WordHasher>>),
        /// Reading: the values, by number.
        Reading(Vec<Text>),
    }

    impl Codec {
        pub(crate) fn writing() -> Codec {
            Codec::Writing(HashMap::default())
        }
        pub(crate) fn reading() -> Codec {
            Codec::Reading(Vec::new())
        }
    }

    thread_local! {
        static CODEC: RefCell<Codec> = const { RefCell::new(Codec::Idle) };
    }

    /// Runs `f` (which encodes or decodes one event of a run) with `codec` as this thread's; the
    /// codec is handed back, with what it learnt, even if `f` panics.
    pub(crate) fn with<R>(codec: &mut Codec, f: impl FnOnce() -> R) -> R {
        struct Back<'a>(&'a mut Codec);
        impl Drop for Back<'_> {
            fn drop(&mut self) {
                *self.0 = CODEC.with(|c| c.take());
            }
        }
        CODEC.with(|c| c.replace(std::mem::take(codec)));
        let _back = Back(codec);
        f()
    }

    /// A text as a run holds it.
    #[derive(serde::Serialize)]
    pub(crate) enum Form<'a> {
        Plain(&'a str),
        /// A shared value met for the first time in the run: it takes the next number.
        New(&'a str),
        Seen(u32),
    }

    /// [`Form`] read back (borrowed from the run's buffer where it can be).
    #[derive(serde::Deserialize)]
    pub(crate) enum FormIn<'a> {
        Plain(#[serde(borrow)] Cow<'a, str>),
        New(#[serde(borrow)] Cow<'a, str>),
        Seen(u32),
    }

    /// How `text` is written, when this thread is writing a run.
    pub(super) fn form(text: &Text) -> Option<Form<'_>> {
        CODEC.with(|c| {
            let mut codec = c.borrow_mut();
            let Codec::Writing(numbers) = &mut *codec else {
                return None;
            };
            if !text.is_shared() {
                return Some(Form::Plain(text.as_str()));
            }
            // A kept copy lives as long as the process: its address and length name it.
            let next = numbers.len() as u32;
            let key = (text.as_str().as_ptr() as usize, text.len());
            Some(match numbers.entry(key) {
                std::collections::hash_map::Entry::Occupied(n) => Form::Seen(*n.get()),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(next);
                    Form::New(text.as_str())
                }
            })
        })
    }

    pub(super) fn reading() -> bool {
        CODEC.with(|c| matches!(*c.borrow(), Codec::Reading(_)))
    }

    pub(super) fn resolve(form: FormIn<'_>) -> Result<Text, String> {
        CODEC.with(|c| {
            let mut codec = c.borrow_mut();
            let Codec::Reading(values) = &mut *codec else {
                return Err("text read from a run outside of one".to_owned());
            };
            Ok(match form {
                FormIn::Plain(s) => Text::from(&*s),
                FormIn::New(s) => {
                    let t = Text::shared(&s);
                    values.push(t.clone());
                    t
                }
                FormIn::Seen(n) => values
                    .get(n as usize)
                    .cloned()
                    .ok_or_else(|| format!("shared text {n} before the run named it"))?,
            })
        })
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
    fn shared_text_reads_as_its_value_and_allocates_once() {
        let guid = "7f0ddfd5-0ac4-40ab-a688-a16250b50aba";
        let a = Text::shared(guid);
        // The same value from another allocation, as the next record would hold it.
        let copy = guid.to_owned();
        let b = Text::shared(copy.as_str());
        assert_eq!(a, guid);
        assert!(a.is_shared() && !a.is_inline());
        assert_eq!((a.heap_bytes(), b.heap_bytes()), (0, 0));
        assert_eq!(a.as_ptr(), b.as_ptr(), "one copy for both");
        assert_eq!(a.clone().as_ptr(), a.as_ptr());
        assert_eq!(Text::from(guid).heap_bytes(), 48);
        let short = Text::shared("Windows10");
        assert!(short.is_inline() && !short.is_shared());
        let upper = Text::shared_lowercase("7F0DDFD5-0AC4-40AB-A688-A16250B50ABA");
        assert_eq!(upper, guid);
        assert_eq!(upper.as_ptr(), a.as_ptr());
        assert_eq!(Text::shared_lowercase("ABC"), "abc");
        // Changing a shared text copies it; the kept value stays.
        let mut c = a.clone();
        c.0.make_ascii_uppercase();
        assert_eq!(c, "7F0DDFD5-0AC4-40AB-A688-A16250B50ABA");
        assert_eq!(Text::shared(guid), guid);
        // Equal whatever its form: hashing and ordering read the text.
        use std::hash::BuildHasher;
        let h = std::collections::hash_map::RandomState::new();
        assert_eq!(h.hash_one(&a), h.hash_one(Text::from(guid)));
        assert_eq!(a.cmp(&Text::from(guid)), std::cmp::Ordering::Equal);
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
