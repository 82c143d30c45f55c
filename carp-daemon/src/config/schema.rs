//! The first pass over a configuration file: every key and the type of its
//! value against [`keys::KEYS`], before anything is converted.
//!
//! So an unknown key gets a "did you mean", a value of the wrong type is
//! named in words ("an integer", "true or false") at its own line, and the
//! value of a secret key (`password`) is never repeated in a message.

use toml::de::{DeArray, DeTable, DeValue};
use toml::Spanned;

use super::error::ConfigError;
use super::keys::{self, Kind, Presence, Section};
use super::locate::join;

/// What the check needs of the file: its text, and where a byte offset is.
pub trait Place {
    /// The text of the file.
    fn src(&self) -> &str;
    /// `file:line: field` of byte `offset`.
    fn at(&self, offset: usize, field: String) -> super::error::At;
}

/// Checks the whole document.
pub fn check(place: &dyn Place, root: &Spanned<DeTable<'_>>) -> Result<(), ConfigError> {
    check_table(place, Section::Root, root.get_ref(), root.span().start, "")
}

fn check_table(
    place: &dyn Place,
    section: Section,
    table: &DeTable<'_>,
    start: usize,
    prefix: &str,
) -> Result<(), ConfigError> {
    // In file order, so the first error is the first in the file.
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(name, _)| name.span().start);
    for (name, value) in entries {
        let field = join(prefix, name.get_ref());
        let Some(key) = keys::find(section, name.get_ref()) else {
            return Err(unknown(place, section, name, field));
        };
        check_value(place, key, value, &field)?;
    }
    for key in keys::of(section) {
        if key.presence == Presence::Required && !table.contains_key(key.name) {
            // A file without instances is told so at its end.
            let offset = if section == Section::Root {
                place.src().len()
            } else {
                start
            };
            return Err(ConfigError::Missing {
                at: place.at(offset, join(prefix, key.name)),
                hint: if section == Section::Root {
                    "define at least one [[instance]]"
                } else {
                    section.required_hint()
                },
            });
        }
    }
    Ok(())
}

fn unknown(
    place: &dyn Place,
    section: Section,
    name: &Spanned<std::borrow::Cow<'_, str>>,
    field: String,
) -> ConfigError {
    let text = name.get_ref();
    let hint = if let Some(close) = keys::did_you_mean(section, text) {
        format!(" (did you mean {close}?)")
    } else if let Some(elsewhere) = keys::KEYS
        .iter()
        .find(|key| key.name == text.as_ref() && !matches!(key.kind, Kind::Table(_)))
    {
        format!(" (it belongs in {})", elsewhere.section.header())
    } else {
        let known: Vec<&str> = keys::of(section).map(|key| key.name).collect();
        format!(
            "; the keys of {} are {}",
            section.header(),
            known.join(", ")
        )
    };
    ConfigError::UnknownKey {
        at: place.at(name.span().start, field),
        key: text.to_string(),
        hint,
    }
}

fn check_value(
    place: &dyn Place,
    key: &keys::Key,
    value: &Spanned<DeValue<'_>>,
    field: &str,
) -> Result<(), ConfigError> {
    let wrong = || wrong_type(place, key, value, field, key.kind.words());
    match (key.kind, value.get_ref()) {
        // Beyond 64 bits: out of any range (serde would say `as i128`).
        (Kind::Integer { .. }, DeValue::Integer(int))
            if i64::from_str_radix(int.as_str(), int.radix()).is_err() =>
        {
            Err(wrong_type(
                place,
                key,
                value,
                field,
                format!("an integer in {}", key.kind.range().unwrap_or_default()),
            ))
        }
        (Kind::Integer { .. }, DeValue::Integer(_))
        | (Kind::Bool, DeValue::Boolean(_))
        | (Kind::String | Kind::Path | Kind::Text(_), DeValue::String(_)) => Ok(()),
        (Kind::OneOf(names), DeValue::String(text)) if names.contains(&text.as_ref()) => Ok(()),
        (Kind::OneOf(_), DeValue::String(text)) => Err(ConfigError::NotOneOf {
            at: place.at(value.span().start, field.to_owned()),
            value: text.to_string(),
            expected: key.kind.words(),
        }),
        (Kind::Strings(_), DeValue::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !matches!(item.get_ref(), DeValue::String(_)) {
                    let field = format!("{field}[{i}]");
                    return Err(wrong_type(place, key, item, &field, "a string".into()));
                }
            }
            Ok(())
        }
        (Kind::Table(section), DeValue::Table(table)) => {
            check_table(place, section, table, value.span().start, field)
        }
        (Kind::Tables(section), DeValue::Array(items)) => {
            check_tables(place, section, items, field)
        }
        _ => Err(wrong()),
    }
}

fn check_tables(
    place: &dyn Place,
    section: Section,
    items: &DeArray<'_>,
    field: &str,
) -> Result<(), ConfigError> {
    for (i, item) in items.iter().enumerate() {
        let field = format!("{field}[{i}]");
        match item.get_ref() {
            DeValue::Table(table) => check_table(place, section, table, item.span().start, &field)?,
            _ => {
                return Err(ConfigError::WrongType {
                    at: place.at(item.span().start, field),
                    found: found(place, None, item),
                    expected: "a table".into(),
                    hint: "",
                })
            }
        }
    }
    Ok(())
}

fn wrong_type(
    place: &dyn Place,
    key: &keys::Key,
    value: &Spanned<DeValue<'_>>,
    field: &str,
    expected: String,
) -> ConfigError {
    let quote = matches!(
        value.get_ref(),
        DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) | DeValue::Datetime(_)
    ) && !matches!(
        key.kind,
        Kind::Integer { .. } | Kind::Bool | Kind::Table(_) | Kind::Tables(_)
    );
    ConfigError::WrongType {
        at: place.at(value.span().start, field.to_owned()),
        found: found(place, key.secret.then_some(()), value),
        expected,
        hint: if quote { " (put it in quotes)" } else { "" },
    }
}

/// The value as written, or its type in words for a secret or a long value.
fn found(place: &dyn Place, secret: Option<()>, value: &Spanned<DeValue<'_>>) -> String {
    let kind = match value.get_ref() {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a decimal number",
        DeValue::Boolean(_) => "true or false",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    };
    if secret.is_some() {
        return format!("{kind} (the value is a secret, not shown)");
    }
    let text = place.src().get(value.span()).unwrap_or_default().trim();
    let short = text.len() <= 40 && !text.contains('\n');
    match value.get_ref() {
        DeValue::Array(_) | DeValue::Table(_) => kind.to_owned(),
        _ if short => text.to_owned(),
        _ => kind.to_owned(),
    }
}
