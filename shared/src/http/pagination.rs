//! Keyset pagination: `?limit=N&after=ID`. Without either parameter a list returns everything,
//! because the original system's clients expect the whole list, as long as it fits in a Lambda
//! response (6 MB): at most [`WHOLE_LIST_ROWS`] items and [`WHOLE_LIST_BYTES`] of JSON. A longer
//! list answers with its first part and a `Link` to the rest. With a parameter, pages are bounded.

use crate::ApiError;
use crate::http::request_body::parse_query_integer;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;
/// The most items a list without parameters returns.
pub const WHOLE_LIST_ROWS: i64 = 10_000;
/// The most bytes of JSON a list without parameters returns, well under Lambda's 6 MB response
/// limit (which counts the whole response, headers and encoding included).
pub const WHOLE_LIST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// No pagination parameter: the whole list, while it fits (see the module's comment).
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

    /// The most rows the store returns for this page.
    pub fn limit(self) -> i64 {
        match self {
            Self::All => WHOLE_LIST_ROWS,
            Self::Keyset { limit, .. } => limit,
        }
    }

    /// The id the page starts after, if any.
    pub fn after(self) -> Option<i64> {
        match self {
            Self::All => None,
            Self::Keyset { after, .. } => after,
        }
    }

    /// The `after` cursor of the next page, when this page came back full.
    pub fn next_after(self, rows: usize, last_id: Option<i64>) -> Option<i64> {
        if rows as i64 == self.limit() {
            last_id
        } else {
            None
        }
    }

    /// The `limit` of the next page's link.
    pub fn next_limit(self) -> i64 {
        match self {
            Self::All => MAX_LIMIT,
            Self::Keyset { limit, .. } => limit,
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
