//! Object keys: S3 notification keys (URL-encoded, `+` for a space) and the `main_stream/`
//! date layout (`main_stream/<year>/<month>/<day>/<hour>/<name>`, not zero-padded).

use std::borrow::Cow;

/// Prefix of Pismo's event files.
pub const MAIN_STREAM_PREFIX: &str = "main_stream/";

/// A key in an S3 event notification could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("object key is not URL-encoded UTF-8")]
pub struct KeyError;

/// Decodes a key as S3 event notifications send it: `+` is a space, `%XX` a byte, and the
/// bytes are UTF-8.
pub fn decode_s3_key(key: &str) -> Result<String, KeyError> {
    let plus_as_space: Cow<'_, str> = if key.contains('+') {
        Cow::Owned(key.replace('+', " "))
    } else {
        Cow::Borrowed(key)
    };
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(&plus_as_space).collect();
    String::from_utf8(bytes).map_err(|_| KeyError)
}

/// Whether `key` (decoded) is an event file under `main_stream/`.
pub fn is_main_stream(key: &str) -> bool {
    key.starts_with(MAIN_STREAM_PREFIX) && key.len() > MAIN_STREAM_PREFIX.len()
}

/// An hour of the `main_stream/` layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamHour {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
}

impl StreamHour {
    /// The hour of a key `main_stream/Y/M/D/H/...`, with or without zero padding.
    pub fn of_key(key: &str) -> Option<Self> {
        let rest = key.strip_prefix(MAIN_STREAM_PREFIX)?;
        let mut parts = rest.splitn(5, '/');
        let year = parts.next()?.parse().ok()?;
        let month = parts.next()?.parse().ok()?;
        let day = parts.next()?.parse().ok()?;
        let hour = parts.next()?.parse().ok()?;
        parts.next()?;
        let hour = Self {
            year,
            month,
            day,
            hour,
        };
        hour.date().ok().filter(|_| hour.hour < 24).map(|_| hour)
    }

    /// Parses `YYYY-MM-DD` (hour 0) or `YYYY-MM-DDTHH` (padding optional).
    pub fn parse(text: &str) -> Option<Self> {
        let (date, hour) = match text.split_once(['T', ' ']) {
            Some((date, hour)) => (date, hour.parse().ok()?),
            None => (text, 0),
        };
        let mut parts = date.split('-');
        let value = Self {
            year: parts.next()?.parse().ok()?,
            month: parts.next()?.parse().ok()?,
            day: parts.next()?.parse().ok()?,
            hour,
        };
        if parts.next().is_some() || value.hour > 23 || value.date().is_err() {
            return None;
        }
        Some(value)
    }

    fn date(&self) -> Result<time::Date, time::error::ComponentRange> {
        let month = time::Month::try_from(self.month)?;
        time::Date::from_calendar_date(self.year, month, self.day)
    }

    /// `main_stream/Y/M/D/` (not zero-padded).
    pub fn day_prefix(&self) -> String {
        format!(
            "{MAIN_STREAM_PREFIX}{}/{}/{}/",
            self.year, self.month, self.day
        )
    }

    /// `main_stream/Y/M/D/H/` (not zero-padded).
    pub fn hour_prefix(&self) -> String {
        format!("{}{}/", self.day_prefix(), self.hour)
    }

    fn next_day(&self) -> Option<Self> {
        let next = self.date().ok()?.next_day()?;
        Some(Self {
            year: next.year(),
            month: next.month() as u8,
            day: next.day(),
            hour: 0,
        })
    }
}

/// The listing prefixes that cover every hour from `from` to `to` (both included): whole days
/// as one day prefix, partial days hour by hour. Empty when `from > to`.
pub fn prefixes_between(from: StreamHour, to: StreamHour) -> Vec<String> {
    let mut prefixes = Vec::new();
    let mut day = StreamHour { hour: 0, ..from };
    while day <= to {
        let same_day = |h: &StreamHour| (h.year, h.month, h.day) == (day.year, day.month, day.day);
        let first = if same_day(&from) { from.hour } else { 0 };
        let last = if same_day(&to) { to.hour } else { 23 };
        if first == 0 && last == 23 {
            prefixes.push(day.day_prefix());
        } else {
            for hour in first..=last {
                prefixes.push(StreamHour { hour, ..day }.hour_prefix());
            }
        }
        match day.next_day() {
            Some(next) => day = next,
            None => break,
        }
    }
    prefixes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent() {
        assert_eq!(
            decode_s3_key("main_stream/2020/4/1/23/a+b%2Bc%20d%C3%A9").unwrap(),
            "main_stream/2020/4/1/23/a b+c dé"
        );
        assert_eq!(decode_s3_key("plain").unwrap(), "plain");
        assert_eq!(decode_s3_key("bad%FF"), Err(KeyError));
        // A lone % is kept as it is.
        assert_eq!(decode_s3_key("50%").unwrap(), "50%");
    }

    #[test]
    fn main_stream_hours_are_not_padded() {
        let hour = StreamHour::of_key("main_stream/2020/4/1/23/file").unwrap();
        assert_eq!(
            hour,
            StreamHour {
                year: 2020,
                month: 4,
                day: 1,
                hour: 23
            }
        );
        assert_eq!(hour.hour_prefix(), "main_stream/2020/4/1/23/");
        assert!(StreamHour::of_key("main_stream/2020/04/01/09/f").is_some());
        assert!(StreamHour::of_key("main_stream/2020/2/30/1/f").is_none());
        assert!(StreamHour::of_key("main_stream/2020/4/1/23").is_none());
        assert!(is_main_stream("main_stream/x"));
        assert!(!is_main_stream("main_stream/"));
        assert!(!is_main_stream("other/main_stream/x"));
    }

    #[test]
    fn ranges_use_day_prefixes_for_whole_days() {
        let from = StreamHour::parse("2020-04-30T22").unwrap();
        let to = StreamHour::parse("2020-05-02T01").unwrap();
        assert_eq!(
            prefixes_between(from, to),
            vec![
                "main_stream/2020/4/30/22/",
                "main_stream/2020/4/30/23/",
                "main_stream/2020/5/1/",
                "main_stream/2020/5/2/0/",
                "main_stream/2020/5/2/1/",
            ]
        );
        let day = StreamHour::parse("2020-04-01").unwrap();
        let end = StreamHour::parse("2020-04-01T23").unwrap();
        assert_eq!(prefixes_between(day, end), vec!["main_stream/2020/4/1/"]);
        assert!(prefixes_between(end, day).is_empty());
        assert!(StreamHour::parse("2020-13-01").is_none());
        assert!(StreamHour::parse("2020-01-01T24").is_none());
    }
}
