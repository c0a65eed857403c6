"""Peer: PyJWT + cryptography verifying the same actor token (RS256), per operation."""
import json
import sys
import time

import jwt
from cryptography import x509

token, cert_pem = open(sys.argv[1]).read().split("\n", 1)
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
actor = jwt.decode(token, options={"verify_signature": False})["actortoken"]
key = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
aud = jwt.decode(actor, options={"verify_signature": False})["aud"]
start = time.perf_counter()
for _ in range(n):
    jwt.decode(actor, key, algorithms=["RS256"], audience=aud, options={"verify_exp": False, "verify_nbf": False})
print(json.dumps({"pyjwt_verify_actor_us": round((time.perf_counter() - start) * 1e6 / n, 1)}))
