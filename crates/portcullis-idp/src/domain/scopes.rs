//! The scopes every pool knows and what they give: an ID token, and which attributes userInfo
//! returns.

use portcullis_config::RESERVED_SCOPES;

/// The scope of tokens minted by the user-pool API (as Cognito's).
pub const ADMIN_SCOPE: &str = "aws.cognito.signin.user.admin";

/// Whether tokens for these (space-separated) scopes include an ID token: `openid`, or the API's
/// `aws.cognito.signin.user.admin`.
pub(crate) fn gives_id_token(scope: &str) -> bool {
    scope.split(' ').any(|s| s == "openid" || s == ADMIN_SCOPE)
}

/// The attributes of Cognito's "basic profile information" (`profile` scope).
pub(crate) const PROFILE_ATTRIBUTES: [&str; 14] = [
    "name",
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
];

/// Which attributes userInfo returns for a token's scopes, as Cognito documents it: `openid`
/// alone gives every readable attribute; with `profile`, `email` or `phone` it gives the profile
/// attributes and custom ones, plus `email`/`email_verified` for `email` and
/// `phone_number`/`phone_number_verified` for `phone`.
pub fn userinfo_scope_filter(scope: &str) -> impl Fn(&str) -> bool {
    let has = |s: &str| scope.split(' ').any(|x| x == s);
    let (email, phone, profile) = (has("email"), has("phone"), has("profile"));
    move |attr: &str| {
        if !profile && !email && !phone {
            return true;
        }
        PROFILE_ATTRIBUTES.contains(&attr)
            || attr.starts_with("custom:")
            || (email && (attr == "email" || attr == "email_verified"))
            || (phone && (attr == "phone_number" || attr == "phone_number_verified"))
    }
}

/// Whether a scope is one every pool knows.
pub fn is_reserved_scope(s: &str) -> bool {
    RESERVED_SCOPES.contains(&s)
}

#[cfg(test)]
mod scope_tests {
    use super::userinfo_scope_filter;

    #[test]
    fn userinfo_attributes_follow_scopes() {
        let all = userinfo_scope_filter("openid");
        assert!(all("email") && all("custom:team") && all("name") && all("address"));
        let email = userinfo_scope_filter("openid email");
        assert!(email("email") && email("email_verified") && email("name") && email("custom:team"));
        assert!(!email("phone_number") && !email("address"));
        let phone = userinfo_scope_filter("openid phone");
        assert!(phone("phone_number") && phone("phone_number_verified") && !phone("email"));
        let profile = userinfo_scope_filter("openid profile");
        assert!(profile("name") && profile("custom:team") && !profile("email"));
    }
}
