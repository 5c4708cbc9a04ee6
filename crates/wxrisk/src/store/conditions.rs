//! A list query's `where` clause made of the filters it was given, and only those.
//!
//! Contract: each active filter adds one condition with placeholders of its own, so every combination of filters is
//! its own plain SQL text, planned by the database with the indexes that fit it. (A catch-all
//! `($n is null or column = $n)` hides the indexes from PostgreSQL's generic plans of a prepared statement.) Only
//! fixed SQL fragments are ever pasted into the text; every value is bound.

use super::AnyQuery;

/// A value bound to a placeholder.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Int(i64),
    Text(String),
}

/// The conditions of a `where` clause and the values they bind, numbered `$1, $2, …` in the order they were added.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    parts: Vec<String>,
    args: Vec<Arg>,
}

impl Conditions {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A placeholder for `arg` (`$n`), for SQL outside the conditions (a limit).
    pub(crate) fn param(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// Add `fragment`, where each `?` stands for the next of `args`.
    pub(crate) fn add(&mut self, fragment: &str, args: impl IntoIterator<Item = Arg>) {
        let mut args = args.into_iter();
        let mut sql = String::with_capacity(fragment.len() + 8);
        for c in fragment.chars() {
            if c == '?' {
                match args.next() {
                    Some(arg) => sql.push_str(&self.param(arg)),
                    None => sql.push('?'),
                }
            } else {
                sql.push(c);
            }
        }
        self.parts.push(sql);
    }

    /// `column in ($a, $b, …)`; with no values, a condition nothing meets.
    pub(crate) fn add_in(&mut self, column: &str, values: impl IntoIterator<Item = Arg>) {
        let placeholders: Vec<String> = values.into_iter().map(|v| self.param(v)).collect();
        if placeholders.is_empty() {
            self.parts.push("1 = 0".to_owned());
        } else {
            self.parts.push(format!("{column} in ({})", placeholders.join(", ")));
        }
    }

    /// The conditions joined with `and` (`1 = 1` when there are none).
    pub(crate) fn sql(&self) -> String {
        if self.parts.is_empty() { "1 = 1".to_owned() } else { self.parts.join(" and ") }
    }

    /// Bind every value, in order.
    pub(crate) fn bind<'q>(&self, mut query: AnyQuery<'q>) -> AnyQuery<'q> {
        for arg in &self.args {
            query = match arg {
                Arg::Int(n) => query.bind(*n),
                Arg::Text(text) => query.bind(text.clone()),
            };
        }
        query
    }
}

/// `text` as a `like … escape '\'` pattern matching it literally (its `%`, `_` and `\` escaped).
pub(crate) fn like_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut c = Conditions::new();
        assert_eq!(c.sql(), "1 = 1");
        c.add("provider_id = ?", [Arg::Int(1)]);
        c.add("(mchid = ? or name like ? escape '\\')", [Arg::Text("a".into()), Arg::Text("%a%".into())]);
        c.add_in("kind", [Arg::Text("PUNISH".into()), Arg::Text("APPEAL".into())]);
        let limit = c.param(Arg::Int(51));
        assert_eq!(c.sql(), "provider_id = $1 and (mchid = $2 or name like $3 escape '\\') and kind in ($4, $5)");
        assert_eq!(limit, "$6");
        let mut empty = Conditions::new();
        empty.add_in("kind", []);
        assert_eq!(empty.sql(), "1 = 0");
        assert_eq!(like_literal("50%_a\\b"), "50\\%\\_a\\\\b");
    }
}
