//! Identifiers that are easy to mix up, each its own type: an event's id, a person's, an API
//! key's, an alert rule's and a destination's. All are text (`usr_...`, `key_...`, a UUID), so as
//! plain strings one could be passed where another was meant and still compile; as types, a rule
//! id handed to a destination lookup is a compile error.
//!
//! They are opaque: nothing here validates their shape, because each is made by the code that
//! creates the record (or read back from the store) and only compared afterwards.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! text_id {
    ($(#[$documentation:meta])* $name:ident) => {
        $(#[$documentation])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(text: impl Into<String>) -> Self {
                Self(text.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(text: String) -> Self {
                Self(text)
            }
        }

        impl From<&str> for $name {
            fn from(text: &str) -> Self {
                Self(text.to_owned())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

text_id!(
    /// An event's id: a UUIDv7 assigned at ingest (or the id an imported event already had).
    EventId
);
text_id!(
    /// A person's id (`usr_...`), used in URLs and sessions.
    UserId
);
text_id!(
    /// An API key's public id (`key_...`), used to list and revoke it (never the secret).
    ApiKeyId
);
text_id!(
    /// An alert rule's id.
    AlertRuleId
);
text_id!(
    /// A delivery destination's id.
    DestinationId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_serialize_as_their_text() {
        let id = UserId::from("usr_1");
        assert_eq!(id.to_string(), "usr_1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"usr_1\"");
        assert_eq!(
            serde_json::from_str::<ApiKeyId>("\"key_2\"").unwrap(),
            ApiKeyId::new("key_2")
        );
        assert_eq!(id, "usr_1");
    }
}
