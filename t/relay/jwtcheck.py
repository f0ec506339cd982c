"""jwtcheck: Entra ID access tokens verified as production's services do
(PRODUCTION.md §1), with Debian's python3-jwt: for t/relay-emulator and
t/relay/manage-api.

  v = Verifier(jwks_file, audience, issuers, oids)
  claims = v.verify(token)       # or raises Refused(status, why)

RS256 only (any other alg, HS256 included: 401); the signature against the
key of the token's kid in jwks_file (read again when the file changes, as
a service refreshes its key cache); aud must equal audience; iss must be
one of issuers exactly; exp, iss and aud must be present and exp in the
future (401).  Then oid must be present (else 403) and one of oids (else
403).
"""
import json
import os

import jwt


class Refused(Exception):
    def __init__(self, status, why):
        super().__init__(why)
        self.status = status
        self.why = why


def manage_issuers(tenant):
    """The two forms the Manage API accepts (MR authentication.py)."""
    return [f"https://sts.windows.net/{tenant}/",
            f"https://login.microsoftonline.com/{tenant}/v2.0/"]


def relay_issuers(tenant):
    """v1 and v2 tokens as Entra ID issues them."""
    return [f"https://sts.windows.net/{tenant}/",
            f"https://login.microsoftonline.com/{tenant}/v2.0"]


class Verifier:
    def __init__(self, jwks_file, audience, issuers, oids):
        self.jwks_file = jwks_file
        self.audience = audience
        self.issuers = list(issuers)
        self.oids = set(oids)
        self._mtime = None
        self._keys = {}

    def _key(self, kid):
        try:
            st = os.stat(self.jwks_file)
        except OSError:
            raise Refused(401, "no signing keys (JWKS) to verify with")
        if st.st_mtime_ns != self._mtime:
            with open(self.jwks_file) as f:
                ks = jwt.PyJWKSet.from_dict(json.load(f))
            self._keys = {k.key_id: k.key for k in ks.keys}
            self._mtime = st.st_mtime_ns
        if kid not in self._keys:
            raise Refused(401, "signed by an unknown key (kid)")
        return self._keys[kid]

    def verify(self, token):
        try:
            head = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Refused(401, "not a JWT")
        if head.get("alg") != "RS256":
            raise Refused(401, f"alg {head.get('alg')} refused: RS256 only")
        key = self._key(head.get("kid"))
        try:
            claims = jwt.decode(token, key, algorithms=["RS256"],
                                audience=self.audience,
                                options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise Refused(401, "token expired")
        except jwt.InvalidAudienceError:
            raise Refused(401, "wrong aud")
        except jwt.PyJWTError as e:
            raise Refused(401, f"token refused: {e}")
        if claims["iss"] not in self.issuers:
            raise Refused(401, "iss not accepted")
        if not claims.get("oid"):
            raise Refused(403, "no oid claim")
        if claims["oid"] not in self.oids:
            raise Refused(403, "oid is not the gateway's")
        return claims
