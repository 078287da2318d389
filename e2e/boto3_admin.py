"""A scripted admin session with the AWS SDK for Python (boto3) against a Portcullis user pool.

Usage: boto3_admin.py <pool base URL> <pool id> <access key id> <secret access key> <outbox path>

Every call goes through boto3's own JSON 1.1 protocol and SigV4 signer, so this is what an app or
a script written for Cognito does. Prints one line per step; exits non-zero on the first surprise.
"""

import base64
import hashlib
import hmac
import json
import sys
import time

import boto3
import jwt
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

base_url, pool_id, key_id, secret_key, outbox = sys.argv[1:6]
REGION = "us-east-1"
cfg = Config(retries={"max_attempts": 1})
idp = boto3.client(
    "cognito-idp",
    endpoint_url=base_url,
    region_name=REGION,
    aws_access_key_id=key_id,
    aws_secret_access_key=secret_key,
    config=cfg,
)
public = boto3.client(
    "cognito-idp",
    endpoint_url=base_url,
    region_name=REGION,
    config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}),
)


def step(msg):
    print(f"ok: {msg}", flush=True)


def expect_error(code, fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {e}"
        return e
    raise AssertionError(f"expected {code}, the call succeeded")


def secret_hash(secret, username, client_id):
    mac = hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def last_code(username, purpose):
    for _ in range(50):
        try:
            with open(outbox) as f:
                lines = [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            lines = []
        mine = [l for l in lines if l["username"] == username and l["purpose"] == purpose]
        if mine:
            return mine[-1]["code"]
        time.sleep(0.1)
    raise AssertionError(f"no {purpose} message for {username} in {outbox}")


# A wrong signature and a missing one are refused before anything happens.
bad = boto3.client(
    "cognito-idp",
    endpoint_url=base_url,
    region_name=REGION,
    aws_access_key_id=key_id,
    aws_secret_access_key=secret_key + "x",
    config=cfg,
)
expect_error("InvalidSignatureException", bad.list_users, UserPoolId=pool_id)
unknown = boto3.client(
    "cognito-idp",
    endpoint_url=base_url,
    region_name=REGION,
    aws_access_key_id="AKIAUNKNOWNKEY000000",
    aws_secret_access_key=secret_key,
    config=cfg,
)
expect_error("UnrecognizedClientException", unknown.list_users, UserPoolId=pool_id)
expect_error("MissingAuthenticationTokenException", public.list_users, UserPoolId=pool_id)
expect_error("ResourceNotFoundException", idp.list_users, UserPoolId="us-east-1_Nope12345")
step("wrong, unknown and missing signatures refused")

pool = idp.describe_user_pool(UserPoolId=pool_id)["UserPool"]
assert pool["Id"] == pool_id and pool["Policies"]["PasswordPolicy"]["MinimumLength"] == 8, pool
step("describe_user_pool")

# Resource server, then a client that may use its scope.
rs = idp.create_resource_server(
    UserPoolId=pool_id,
    Identifier="reports",
    Name="Reports",
    Scopes=[{"ScopeName": "read", "ScopeDescription": "Read reports"}],
)["ResourceServer"]
assert rs["Scopes"][0]["ScopeName"] == "read", rs
expect_error(
    "InvalidParameterException",
    idp.create_resource_server,
    UserPoolId=pool_id,
    Identifier="reports",
    Name="Again",
)
step("create_resource_server (and a duplicate refused)")

expect_error(
    "ScopeDoesNotExistException",
    idp.create_user_pool_client,
    UserPoolId=pool_id,
    ClientName="bad",
    AllowedOAuthFlows=["code"],
    AllowedOAuthScopes=["reports/write"],
    CallbackURLs=["http://localhost/cb"],
    AllowedOAuthFlowsUserPoolClient=True,
)
created = idp.create_user_pool_client(
    UserPoolId=pool_id,
    ClientName="cli-app",
    GenerateSecret=True,
    ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"],
    AllowedOAuthFlows=["code"],
    AllowedOAuthScopes=["openid", "reports/read"],
    CallbackURLs=["http://localhost/cb"],
    AllowedOAuthFlowsUserPoolClient=True,
    PreventUserExistenceErrors="ENABLED",
)["UserPoolClient"]
client_id, client_secret = created["ClientId"], created["ClientSecret"]
assert len(client_id) == 26 and len(client_secret) >= 24, created
described = idp.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
assert described["AllowedOAuthScopes"] == ["openid", "reports/read"], described
listed = idp.list_user_pool_clients(UserPoolId=pool_id)["UserPoolClients"]
assert any(c["ClientId"] == client_id for c in listed), listed
step("create_user_pool_client with a generated secret (and an undefined scope refused)")

group = idp.create_group(UserPoolId=pool_id, GroupName="auditors", Precedence=3, Description="Audit")["Group"]
assert group["Precedence"] == 3, group
expect_error("GroupExistsException", idp.create_group, UserPoolId=pool_id, GroupName="auditors")
step("create_group")

user = idp.admin_create_user(
    UserPoolId=pool_id,
    Username="bob",
    UserAttributes=[{"Name": "email", "Value": "bob@example.com"}, {"Name": "email_verified", "Value": "true"}],
    TemporaryPassword="Temp-pass-1!",
    MessageAction="SUPPRESS",
)["User"]
assert user["UserStatus"] == "FORCE_CHANGE_PASSWORD" and user["Enabled"], user
expect_error("UsernameExistsException", idp.admin_create_user, UserPoolId=pool_id, Username="bob")
expect_error(
    "InvalidParameterException",
    idp.admin_create_user,
    UserPoolId=pool_id,
    Username="mallory",
    UserAttributes=[{"Name": "custom:undeclared", "Value": "x"}],
)
step("admin_create_user in FORCE_CHANGE_PASSWORD")

# First sign-in with the temporary password: NEW_PASSWORD_REQUIRED, answered with a new one.
sh = secret_hash(client_secret, "bob", client_id)
ch = public.initiate_auth(
    ClientId=client_id,
    AuthFlow="USER_PASSWORD_AUTH",
    AuthParameters={"USERNAME": "bob", "PASSWORD": "Temp-pass-1!", "SECRET_HASH": sh},
)
assert ch["ChallengeName"] == "NEW_PASSWORD_REQUIRED", ch
expect_error(
    "InvalidPasswordException",
    public.respond_to_auth_challenge,
    ClientId=client_id,
    ChallengeName="NEW_PASSWORD_REQUIRED",
    Session=ch["Session"],
    ChallengeResponses={"USERNAME": "bob", "NEW_PASSWORD": "short", "SECRET_HASH": sh},
)
done = public.respond_to_auth_challenge(
    ClientId=client_id,
    ChallengeName="NEW_PASSWORD_REQUIRED",
    Session=ch["Session"],
    ChallengeResponses={"USERNAME": "bob", "NEW_PASSWORD": "Chosen-pass-2!", "SECRET_HASH": sh},
)
assert "AccessToken" in done["AuthenticationResult"], done
expect_error(
    "NotAuthorizedException",
    public.respond_to_auth_challenge,
    ClientId=client_id,
    ChallengeName="NEW_PASSWORD_REQUIRED",
    Session=ch["Session"],
    ChallengeResponses={"USERNAME": "bob", "NEW_PASSWORD": "Chosen-pass-3!", "SECRET_HASH": sh},
)
step("NEW_PASSWORD_REQUIRED answered once (a weak password and a replayed session refused)")

idp.admin_set_user_password(UserPoolId=pool_id, Username="bob", Password="Bob-password-1!", Permanent=True)
got = idp.admin_get_user(UserPoolId=pool_id, Username="bob")
assert got["UserStatus"] == "CONFIRMED", got
attrs = {a["Name"]: a["Value"] for a in got["UserAttributes"]}
assert attrs["email"] == "bob@example.com" and len(attrs["sub"]) == 36, attrs
step("admin_set_user_password permanent -> CONFIRMED")

idp.admin_add_user_to_group(UserPoolId=pool_id, Username="bob", GroupName="auditors")
groups = idp.admin_list_groups_for_user(UserPoolId=pool_id, Username="bob")["Groups"]
assert [g["GroupName"] for g in groups] == ["auditors"], groups
step("admin_add_user_to_group")

expect_error(
    "NotAuthorizedException",
    public.initiate_auth,
    ClientId=client_id,
    AuthFlow="USER_PASSWORD_AUTH",
    AuthParameters={"USERNAME": "bob", "PASSWORD": "Bob-password-1!", "SECRET_HASH": "d3Jvbmc="},
)
expect_error(
    "NotAuthorizedException",
    public.initiate_auth,
    ClientId=client_id,
    AuthFlow="USER_PASSWORD_AUTH",
    AuthParameters={"USERNAME": "bob", "PASSWORD": "Wrong-password-1!", "SECRET_HASH": sh},
)
auth = public.initiate_auth(
    ClientId=client_id,
    AuthFlow="USER_PASSWORD_AUTH",
    AuthParameters={"USERNAME": "bob", "PASSWORD": "Bob-password-1!", "SECRET_HASH": sh},
)["AuthenticationResult"]
assert auth["TokenType"] == "Bearer" and auth["ExpiresIn"] > 0, auth
jwks = jwt.PyJWKClient(f"{base_url}/{pool_id}/.well-known/jwks.json")
id_claims = jwt.decode(
    auth["IdToken"],
    jwks.get_signing_key_from_jwt(auth["IdToken"]).key,
    algorithms=["RS256"],
    audience=client_id,
    issuer=f"{base_url}/{pool_id}",
)
assert id_claims["cognito:username"] == "bob" and id_claims["cognito:groups"] == ["auditors"], id_claims
access = jwt.decode(
    auth["AccessToken"],
    jwks.get_signing_key_from_jwt(auth["AccessToken"]).key,
    algorithms=["RS256"],
    options={"verify_aud": False},
)
assert access["scope"] == "aws.cognito.signin.user.admin" and access["client_id"] == client_id, access
me = public.get_user(AccessToken=auth["AccessToken"])
assert me["Username"] == "bob", me
step("initiate_auth USER_PASSWORD_AUTH with SECRET_HASH; tokens verified by PyJWT; get_user")

refreshed = public.initiate_auth(
    ClientId=client_id,
    AuthFlow="REFRESH_TOKEN_AUTH",
    AuthParameters={"REFRESH_TOKEN": auth["RefreshToken"], "SECRET_HASH": sh},
)["AuthenticationResult"]
assert refreshed["AccessToken"] != auth["AccessToken"] and "RefreshToken" not in refreshed, refreshed
step("initiate_auth REFRESH_TOKEN_AUTH")

admin_auth = idp.admin_initiate_auth(
    UserPoolId=pool_id,
    ClientId=client_id,
    AuthFlow="ADMIN_USER_PASSWORD_AUTH",
    AuthParameters={"USERNAME": "bob", "PASSWORD": "Bob-password-1!", "SECRET_HASH": sh},
)["AuthenticationResult"]
assert admin_auth["IdToken"] and admin_auth["RefreshToken"], admin_auth
expect_error(
    "MissingAuthenticationTokenException",
    public.admin_initiate_auth,
    UserPoolId=pool_id,
    ClientId=client_id,
    AuthFlow="ADMIN_USER_PASSWORD_AUTH",
    AuthParameters={"USERNAME": "bob", "PASSWORD": "Bob-password-1!", "SECRET_HASH": sh},
)
updated = idp.update_user_pool_client(
    UserPoolId=pool_id,
    ClientId=client_id,
    ClientName="cli-app-renamed",
    ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"],
    AllowedOAuthFlows=["code"],
    AllowedOAuthScopes=["openid", "reports/read"],
    CallbackURLs=["http://localhost/cb", "http://localhost/cb2"],
    AllowedOAuthFlowsUserPoolClient=True,
    PreventUserExistenceErrors="ENABLED",
)["UserPoolClient"]
assert updated["ClientName"] == "cli-app-renamed" and updated["ClientSecret"] == client_secret, updated
step("admin_initiate_auth (signed only); update_user_pool_client keeps the secret")

for name in ["carol", "dave", "erin", "frank"]:
    idp.admin_create_user(
        UserPoolId=pool_id,
        Username=name,
        UserAttributes=[{"Name": "email", "Value": f"{name}@corp.example"}],
        MessageAction="SUPPRESS",
    )
one = idp.list_users(UserPoolId=pool_id, Filter='email = "bob@example.com"')["Users"]
assert [u["Username"] for u in one] == ["bob"], one
corp = idp.list_users(UserPoolId=pool_id, Filter='email ^= "carol@"', Limit=60)["Users"]
assert [u["Username"] for u in corp] == ["carol"], corp
pages = idp.get_paginator("list_users").paginate(
    UserPoolId=pool_id, Filter='cognito:user_status = "FORCE_CHANGE_PASSWORD"', PaginationConfig={"PageSize": 2}
)
names = [u["Username"] for p in pages for u in p["Users"]]
assert names == ["carol", "dave", "erin", "frank"], names
expect_error("InvalidParameterException", idp.list_users, UserPoolId=pool_id, Filter="password = \"x\"")
step("list_users with a filter, and paginated 2 at a time")

public.revoke_token(Token=auth["RefreshToken"], ClientId=client_id, ClientSecret=client_secret)
expect_error(
    "NotAuthorizedException",
    public.initiate_auth,
    ClientId=client_id,
    AuthFlow="REFRESH_TOKEN_AUTH",
    AuthParameters={"REFRESH_TOKEN": auth["RefreshToken"], "SECRET_HASH": sh},
)
expect_error("NotAuthorizedException", public.get_user, AccessToken=auth["AccessToken"])
step("revoke_token: the refresh token and the access tokens minted from it are dead")

again = public.initiate_auth(
    ClientId=client_id,
    AuthFlow="USER_PASSWORD_AUTH",
    AuthParameters={"USERNAME": "bob", "PASSWORD": "Bob-password-1!", "SECRET_HASH": sh},
)["AuthenticationResult"]
idp.admin_user_global_sign_out(UserPoolId=pool_id, Username="bob")
expect_error("NotAuthorizedException", public.get_user, AccessToken=again["AccessToken"])
step("admin_user_global_sign_out")

# Secret rotation: a second secret works, then the first is deleted.
second = idp.add_user_pool_client_secret(UserPoolId=pool_id, ClientId=client_id)["ClientSecretDescriptor"]
secrets = idp.list_user_pool_client_secrets(UserPoolId=pool_id, ClientId=client_id)["ClientSecrets"]
assert len(secrets) == 2 and all("ClientSecretValue" not in s for s in secrets), secrets
expect_error("LimitExceededException", idp.add_user_pool_client_secret, UserPoolId=pool_id, ClientId=client_id)
sh2 = secret_hash(second["ClientSecretValue"], "bob", client_id)
public.initiate_auth(
    ClientId=client_id,
    AuthFlow="USER_PASSWORD_AUTH",
    AuthParameters={"USERNAME": "bob", "PASSWORD": "Bob-password-1!", "SECRET_HASH": sh2},
)
first_id = [s["ClientSecretId"] for s in secrets if s["ClientSecretId"] != second["ClientSecretId"]][0]
idp.delete_user_pool_client_secret(UserPoolId=pool_id, ClientId=client_id, ClientSecretId=first_id)
expect_error(
    "NotAuthorizedException",
    public.initiate_auth,
    ClientId=client_id,
    AuthFlow="USER_PASSWORD_AUTH",
    AuthParameters={"USERNAME": "bob", "PASSWORD": "Bob-password-1!", "SECRET_HASH": sh},
)
step("client secret rotation: add, use the second, delete the first")

# Self-service: sign-up with a code from the outbox, then forgot password.
sh_z = secret_hash(second["ClientSecretValue"], "zoe", client_id)
su = public.sign_up(
    ClientId=client_id,
    SecretHash=sh_z,
    Username="zoe",
    Password="Zoe-password-1!",
    UserAttributes=[{"Name": "email", "Value": "zoe@example.com"}],
)
assert not su["UserConfirmed"] and su["CodeDeliveryDetails"]["Destination"] == "z***@e***", su
expect_error(
    "UserNotConfirmedException",
    public.initiate_auth,
    ClientId=client_id,
    AuthFlow="USER_PASSWORD_AUTH",
    AuthParameters={"USERNAME": "zoe", "PASSWORD": "Zoe-password-1!", "SECRET_HASH": sh_z},
)
code = last_code("zoe", "sign_up")
wrong = "000000" if code != "000000" else "111111"
expect_error(
    "CodeMismatchException",
    public.confirm_sign_up,
    ClientId=client_id,
    SecretHash=sh_z,
    Username="zoe",
    ConfirmationCode=wrong,
)
public.confirm_sign_up(ClientId=client_id, SecretHash=sh_z, Username="zoe", ConfirmationCode=code)
public.initiate_auth(
    ClientId=client_id,
    AuthFlow="USER_PASSWORD_AUTH",
    AuthParameters={"USERNAME": "zoe", "PASSWORD": "Zoe-password-1!", "SECRET_HASH": sh_z},
)
public.forgot_password(ClientId=client_id, SecretHash=sh_z, Username="zoe")
public.confirm_forgot_password(
    ClientId=client_id,
    SecretHash=sh_z,
    Username="zoe",
    ConfirmationCode=last_code("zoe", "forgot_password"),
    Password="Zoe-password-2!",
)
public.initiate_auth(
    ClientId=client_id,
    AuthFlow="USER_PASSWORD_AUTH",
    AuthParameters={"USERNAME": "zoe", "PASSWORD": "Zoe-password-2!", "SECRET_HASH": sh_z},
)
# An unknown user gets the same answer (existence errors prevented).
sh_n = secret_hash(second["ClientSecretValue"], "nobody", client_id)
fp = public.forgot_password(ClientId=client_id, SecretHash=sh_n, Username="nobody")
assert "CodeDeliveryDetails" in fp, fp
step("sign_up, confirm_sign_up, forgot_password, confirm_forgot_password")

idp.admin_disable_user(UserPoolId=pool_id, Username="zoe")
expect_error(
    "NotAuthorizedException",
    public.initiate_auth,
    ClientId=client_id,
    AuthFlow="USER_PASSWORD_AUTH",
    AuthParameters={"USERNAME": "zoe", "PASSWORD": "Zoe-password-2!", "SECRET_HASH": sh_z},
)
idp.admin_delete_user(UserPoolId=pool_id, Username="zoe")
expect_error("UserNotFoundException", idp.admin_get_user, UserPoolId=pool_id, Username="zoe")
idp.delete_user_pool_client(UserPoolId=pool_id, ClientId=client_id)
expect_error("ResourceNotFoundException", idp.describe_user_pool_client, UserPoolId=pool_id, ClientId=client_id)
step("admin_disable_user, admin_delete_user, delete_user_pool_client")

print("boto3: admin session complete", flush=True)
