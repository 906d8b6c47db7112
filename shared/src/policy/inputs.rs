//! What a decision read, as journal inputs: every field a rule may read except the ones never
//! journaled. A backtest decides the request again from them.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use crate::journal::Input;
use crate::policy::{Field, PolicySubject};

/// Fields a rule may read that are never journaled: card numbers or parts of them, documents,
/// names, postal codes. A rule on one of them cannot be backtested.
pub const NOT_JOURNALED: &[&str] = &[
    "card.bin",
    "fields.bin",
    "fields.last_four_digits",
    "fields.cpf",
    "fields.merchant_name",
    "fields.postal_code",
    "fields.cardholder_postal_code",
    "fields.pos_postal_code",
];

/// Every field a rule may read ([`PolicySubject::FIELDS`]) except [`NOT_JOURNALED`], as
/// decision inputs: what a backtest needs to decide the request again. Absent fields are
/// left out.
pub fn all_inputs<R: PolicySubject>(request: &R) -> Vec<(Cow<'static, str>, Input)> {
    let mut out = Vec::with_capacity(R::FIELDS.len());
    request.visit_fields(&mut |path, value| {
        if NOT_JOURNALED.contains(&path) {
            return;
        }
        if let Some(v) = input_of(value) {
            out.push((Cow::Borrowed(path), v));
        }
    });
    out
}

fn input_of(value: Field<'_>) -> Option<Input> {
    Some(match value {
        Field::Absent => return None,
        Field::Text(t) => Input::Text(t.into_owned()),
        Field::Number(n) => Input::Number(n),
        Field::Bool(b) => Input::Bool(b),
        Field::List(l) => Input::List(l.into_iter().map(|s| s.into_owned()).collect()),
    })
}

/// The named fields of a request, as decision inputs. Absent fields are left out; only
/// paths in the caller's list are read, so nothing sensitive is journaled by accident.
pub fn inputs_of<R: PolicySubject>(
    request: &R,
    paths: &[&'static str],
) -> Vec<(Cow<'static, str>, Input)> {
    paths
        .iter()
        .filter_map(|p| input_of(request.field(p)).map(|v| (Cow::Borrowed(*p), v)))
        .collect()
}

/// SHA-256 (hex) of a document: the policy version.
pub fn version_of(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}
