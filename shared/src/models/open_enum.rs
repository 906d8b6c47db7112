//! Open string enums: enums whose wire form is a string and that accept values Pismo adds
//! later without failing the request.
//!
//! [`open_enum!`](crate::open_enum) declares an enum with one variant per known value plus an
//! `Other(String)` variant that keeps any unknown value verbatim. Serialization always writes
//! back the exact original string, so an unknown value round-trips unchanged.
//!
//! ```
//! shared::open_enum! {
//!     /// Example.
//!     pub enum Fruit {
//!         Apple => "apple",
//!         Pear => "pear",
//!     }
//! }
//! assert_eq!(Fruit::from("apple"), Fruit::Apple);
//! assert_eq!(Fruit::from("kiwi"), Fruit::Other("kiwi".to_owned()));
//! assert_eq!(Fruit::Other("kiwi".to_owned()).as_str(), "kiwi");
//! ```
//!
//! Build values with `From<&str>` / `From<String>` / `FromStr` (they map known strings to
//! their named variant); `Other("apple".into())` is a different value from `Apple`.

#[doc(hidden)]
pub use serde as __serde;

/// Declares an open string enum. See the [module docs](crate::models::open_enum).
///
/// Derives `Debug, Clone, PartialEq, Eq, Hash` and implements `as_str`, `is_known`, `KNOWN`,
/// `Display`, `FromStr` (infallible), `From<&str>`, `From<String>`, `Serialize` and
/// `Deserialize` (from a JSON string only).
#[macro_export]
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $value:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* #[doc = concat!("`\"", $value, "\"`")] $variant, )+
            /// A value this crate does not know (yet), kept verbatim.
            Other(::std::string::String),
        }

        impl $name {
            /// Every value this crate knows, in declaration order.
            pub const KNOWN: &'static [&'static str] = &[$($value),+];

            /// The exact wire string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $value, )+
                    Self::Other(value) => value.as_str(),
                }
            }

            /// `false` for [`Self::Other`].
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl ::std::convert::From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $value => Self::$variant, )+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl ::std::convert::From<::std::string::String> for $name {
            fn from(value: ::std::string::String) -> Self {
                match value.as_str() {
                    $( $value => Self::$variant, )+
                    _ => Self::Other(value),
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;
            fn from_str(value: &str) -> ::std::result::Result<Self, Self::Err> {
                Ok(Self::from(value))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::models::open_enum::__serde::Serialize for $name {
            fn serialize<S>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error>
            where
                S: $crate::models::open_enum::__serde::Serializer,
            {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::models::open_enum::__serde::Deserialize<'de> for $name {
            fn deserialize<D>(deserializer: D) -> ::std::result::Result<Self, D::Error>
            where
                D: $crate::models::open_enum::__serde::Deserializer<'de>,
            {
                struct OpenEnumVisitor;
                impl<'de> $crate::models::open_enum::__serde::de::Visitor<'de> for OpenEnumVisitor {
                    type Value = $name;
                    fn expecting(
                        &self,
                        f: &mut ::std::fmt::Formatter<'_>,
                    ) -> ::std::fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E>(self, value: &str) -> ::std::result::Result<$name, E>
                    where
                        E: $crate::models::open_enum::__serde::de::Error,
                    {
                        Ok($name::from(value))
                    }
                    fn visit_string<E>(
                        self,
                        value: ::std::string::String,
                    ) -> ::std::result::Result<$name, E>
                    where
                        E: $crate::models::open_enum::__serde::de::Error,
                    {
                        Ok($name::from(value))
                    }
                }
                deserializer.deserialize_str(OpenEnumVisitor)
            }
        }
    };
}
