//! Usernames: 3 to 32 ASCII letters, digits, `.`, `-` or `_`; never an `@`, so a login name is
//! always either an email address or a username. Unique whatever their case.

/// Why `username` is not one, if it is not.
pub fn check(username: &str) -> Result<(), &'static str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    if !(3..=32).contains(&username.len()) || !username.chars().all(allowed) {
        return Err("username must be 3 to 32 letters, digits, '.', '-' or '_' (it cannot contain '@')");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn usernames_are_short_plain_names_without_an_at() {
        for good in ["ada", "Ada.Lovelace", "a-b_c.9", &"x".repeat(32)] {
            assert!(check(good).is_ok(), "{good}");
        }
        for bad in ["ab", &"x".repeat(33), "ada@home", "ada lovelace", "adä", "", "a/b"] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
