//! CloudEvents 1.0 over HTTP: the three content modes of the HTTP protocol binding and strict
//! validation of every event against the core specification and the JSON event format.
//!
//! The Rust CloudEvents SDK's server bindings neither parse batches, nor percent-decode
//! binary-mode headers, nor enforce the attribute rules; this module does all three:
//!
//! - [`parse_http`] picks the mode from the request ([`Mode`]) and returns every event of the
//!   delivery, or one error for the whole delivery (an invalid batch is refused whole);
//!   [`parse_http_partial`] returns the invalid elements of a batch beside the valid events
//!   instead (the `aritma-events` handler quarantines them);
//! - [`validate_event`] checks one JSON-format event and returns it as a
//!   [`CloudEvent`](crate::models::CloudEvent), extensions such as Aritma's `tid` included;
//! - the syntax checks it uses ([`is_rfc3339`], [`is_uri_reference`], [`is_absolute_uri`],
//!   [`MediaType::parse`], [`decode_header_value`]) are public for reuse.
//!
//! Errors ([`InvalidEvent`]) name the attribute and the rule, never a value from the input.

mod binding;
mod media;
mod validate;

pub use binding::{
    BindingError, Delivery, Mode, PartialDelivery, RejectedElement, decode_header_value,
    parse_http, parse_http_partial,
};
pub use media::MediaType;
pub use validate::{
    InvalidEvent, SPEC_VERSION, is_absolute_uri, is_rfc3339, is_uri_reference,
    is_valid_attribute_name, validate_event, validate_value,
};
