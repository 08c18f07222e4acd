//! Keyset pagination: `?limit=N&after=ID`. Without either parameter a list returns everything,
//! because the original system's clients expect the whole list; with one, pages are bounded.

use crate::ApiError;
use crate::request_body::parse_query_integer;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// No pagination parameter: the whole list.
    All,
    /// At most `limit` rows that come after the row with id `after` in the list's order.
    Keyset { after: Option<i64>, limit: i64 },
}

impl Page {
    pub fn from_query(limit: Option<&str>, after: Option<&str>) -> Result<Self, ApiError> {
        if limit.is_none() && after.is_none() {
            return Ok(Self::All);
        }
        let limit = limit
            .map(|v| parse_query_integer("limit", v, 1..=MAX_LIMIT))
            .transpose()?
            .unwrap_or(DEFAULT_LIMIT);
        let after = after
            .map(|v| parse_query_integer("after", v, 0..=i64::MAX))
            .transpose()?;
        Ok(Self::Keyset { after, limit })
    }

    /// The `after` cursor of the next page, when this page came back full.
    pub fn next_after(self, rows: usize, last_id: Option<i64>) -> Option<i64> {
        match self {
            Self::Keyset { limit, .. } if rows as i64 == limit => last_id,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_parameters_means_everything() {
        assert_eq!(Page::from_query(None, None).unwrap(), Page::All);
    }

    #[test]
    fn parameters_give_a_bounded_page() {
        assert_eq!(
            Page::from_query(Some("10"), Some("5")).unwrap(),
            Page::Keyset {
                after: Some(5),
                limit: 10
            }
        );
        assert_eq!(
            Page::from_query(None, Some("5")).unwrap(),
            Page::Keyset {
                after: Some(5),
                limit: DEFAULT_LIMIT
            }
        );
        assert_eq!(
            Page::from_query(Some("3"), None).unwrap(),
            Page::Keyset {
                after: None,
                limit: 3
            }
        );
    }

    #[test]
    fn bad_parameters_are_422_naming_the_parameter() {
        for (limit, after, field) in [
            (Some("0"), None, "limit"),
            (Some("1001"), None, "limit"),
            (Some("ten"), None, "limit"),
            (None, Some("-1"), "after"),
            (None, Some("x"), "after"),
        ] {
            let err = Page::from_query(limit, after).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field));
            assert_eq!(err.status.as_u16(), 422);
        }
    }

    #[test]
    fn a_full_page_has_a_next_cursor() {
        let page = Page::Keyset {
            after: None,
            limit: 2,
        };
        assert_eq!(page.next_after(2, Some(9)), Some(9));
        assert_eq!(page.next_after(1, Some(9)), None);
        assert_eq!(Page::All.next_after(2, Some(9)), None);
    }
}
