//! Media types (RFC 2046 / RFC 7231 `media-type`): `type "/" subtype *( OWS ";" OWS parameter )`.

/// A parsed media type. Type, subtype and parameter names are lowercased; parameter values
/// keep their case, with quoted strings unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// `type/subtype`, lowercase.
    pub essence: String,
    /// Parameters in order, names lowercase.
    pub params: Vec<(String, String)>,
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

fn token<'a>(b: &'a [u8], i: &mut usize) -> Option<&'a [u8]> {
    let start = *i;
    while *i < b.len() && is_tchar(b[*i]) {
        *i += 1;
    }
    (*i > start).then(|| &b[start..*i])
}

fn skip_ows(b: &[u8], i: &mut usize) {
    while *i < b.len() && matches!(b[*i], b' ' | b'\t') {
        *i += 1;
    }
}

fn lower(bytes: &[u8]) -> String {
    // Tokens are ASCII.
    String::from_utf8_lossy(bytes).to_ascii_lowercase()
}

impl MediaType {
    /// Parses a `Content-Type` / `datacontenttype` value; `None` when it is not a media type.
    pub fn parse(value: &str) -> Option<Self> {
        let b = value.as_bytes();
        let mut i = 0;
        skip_ows(b, &mut i);
        let kind = token(b, &mut i)?;
        if b.get(i) != Some(&b'/') {
            return None;
        }
        i += 1;
        let subtype = token(b, &mut i)?;
        let mut params = Vec::new();
        loop {
            skip_ows(b, &mut i);
            if i == b.len() {
                break;
            }
            if b[i] != b';' {
                return None;
            }
            i += 1;
            skip_ows(b, &mut i);
            let name = token(b, &mut i)?;
            if b.get(i) != Some(&b'=') {
                return None;
            }
            i += 1;
            let value = if b.get(i) == Some(&b'"') {
                i += 1;
                let mut out = Vec::new();
                loop {
                    match b.get(i) {
                        None => return None,
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let escaped = *b.get(i + 1)?;
                            if (escaped < 0x20 && escaped != b'\t') || escaped == 0x7f {
                                return None;
                            }
                            out.push(escaped);
                            i += 2;
                        }
                        Some(&c) if c == b'\t' || (c >= 0x20 && c != 0x7f) => {
                            out.push(c);
                            i += 1;
                        }
                        Some(_) => return None,
                    }
                }
                String::from_utf8(out).ok()?
            } else {
                String::from_utf8_lossy(token(b, &mut i)?).into_owned()
            };
            params.push((lower(name), value));
        }
        let mut essence = lower(kind);
        essence.push('/');
        essence.push_str(&lower(subtype));
        Some(Self { essence, params })
    }

    /// The value of parameter `name` (lowercase), if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the `charset` parameter is absent or UTF-8.
    pub fn charset_is_utf8(&self) -> bool {
        self.param("charset")
            .is_none_or(|c| c.eq_ignore_ascii_case("utf-8") || c.eq_ignore_ascii_case("utf8"))
    }

    /// `application/json`, `text/json` or any `+json` structured syntax suffix.
    pub fn is_json(&self) -> bool {
        self.essence == "application/json"
            || self.essence == "text/json"
            || self.essence.ends_with("+json")
    }

    /// `text/*`.
    pub fn is_text(&self) -> bool {
        self.essence.starts_with("text/")
    }
}

#[cfg(test)]
mod tests {
    use super::MediaType;

    #[test]
    fn parses_and_refuses() {
        let m = MediaType::parse("Application/CloudEvents+JSON; charset=\"UTF-8\"").unwrap();
        assert_eq!(m.essence, "application/cloudevents+json");
        assert_eq!(m.param("charset"), Some("UTF-8"));
        assert!(m.charset_is_utf8() && m.is_json());
        assert!(MediaType::parse("text/plain").unwrap().is_text());
        for bad in [
            "xyz",
            "",
            "text/",
            "/plain",
            "text/plain;",
            "text/plain; charset",
            "text /plain",
            "text/plain; a=\"open",
            "text/plain, text/html",
        ] {
            assert_eq!(MediaType::parse(bad), None, "{bad:?}");
        }
        let latin = MediaType::parse("application/json; charset=iso-8859-1").unwrap();
        assert!(!latin.charset_is_utf8());
    }
}
