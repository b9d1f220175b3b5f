#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ from the DRF captures and the
dumpdata fixture in t/fixtures (or the directory given as argv[1]).
The seeds are committed; this script only documents where they come from
and remakes them. Each seed is laid out as its target reads its input."""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
fixtures = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    here, "..", "t", "fixtures")
corpus = os.path.join(here, "corpus")

KEY = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
PLACEHOLDERS = {"{alice_token}": KEY, "{bob_token}": "b" * 40,
                "{alice_token_upper}": KEY.upper(),
                "{alice_token_minus1}": KEY[:-1]}


def fill(text):
    for name, value in PLACEHOLDERS.items():
        text = text.replace(name, value)
    return text


def write(target, name, data):
    os.makedirs(os.path.join(corpus, target), exist_ok=True)
    with open(os.path.join(corpus, target, name), "wb") as f:
        f.write(data)


oracle = json.load(open(os.path.join(fixtures, "drf-oracle-public.json")))
dump_text = open(os.path.join(fixtures, "django-dumpdata.json")).read()
dump = json.loads(dump_text)

# fuzz_authorization_header: a keyword-choice byte, then the header value
# (latin-1 bytes). Byte 0 picks the single keyword "Token".
for case in oracle["cases"]:
    for name, value in case["request"]["headers"]:
        if name.lower() == "authorization" and case["name"].startswith("hello_"):
            write("fuzz_authorization_header", case["name"],
                  b"\x00" + fill(value).encode("latin-1"))
write("fuzz_authorization_header", "three_keywords_utf8_key",
      b"\x02bearer caf\xc3\xa9")
write("fuzz_authorization_header", "surrogate_key", b"\x00Token \xed\xa0\x80")

# fuzz_obtain_request, raw mode: byte 0 (mode), byte 0xff (the content type
# is the next line), the Content-Type, "\n", the body.
for case in oracle["cases"]:
    request = case["request"]
    if not case["name"].startswith("obtain_") or request["method"] != "POST":
        continue
    content_type = ""
    for name, value in request["headers"]:
        if name.lower() == "content-type":
            content_type = fill(value)
    write("fuzz_obtain_request", case["name"],
          b"\x00\xff" + content_type.encode("latin-1") + b"\n" +
          fill(request["body"]).encode("utf-8"))
# Round-trip modes: mode byte, username and password (length-prefixed),
# then style and layout bytes.
for mode, style in ((1, b"\x06\x3f"), (2, b"\x7c"), (3, b"\x01\x2f")):
    write("fuzz_obtain_request", "round_trip_%d" % mode,
          bytes([mode, 7]) + b" alice " + bytes([10]) + b"wonderland" + style)
write("fuzz_obtain_request", "round_trip_unicode",
          bytes([3, 9]) + "\u3000bø\u2028".encode() + bytes([3]) + b"p\x00w" + b"\x07\x00")

# fuzz_password_hash. Mode 0: password (length-prefixed) then the encoding,
# the fixture's hashes with their passwords from the fixtures' README.
passwords = {"admin": "admin-pass-123", "carol": "correct horse battery staple",
             "dave": "p@ssw0rd-\u00fc\u00df", "erin": "erin's secret",
             "frank": "frank-inactive", "grace": "no-token-yet", "heidi": ""}
for obj in dump:
    if obj["model"] == "auth.user":
        raw = passwords[obj["fields"]["username"]].encode()
        write("fuzz_password_hash", "fixture_" + obj["fields"]["username"],
              b"\x00" + bytes([len(raw)]) + raw + obj["fields"]["password"].encode())
for name, encoding in (
        ("pbkdf2_cheap", "pbkdf2_sha256$1000$abcdefghijklmnopqrstuv$" + "A" * 43 + "="),
        ("pbkdf2_over_bound", "pbkdf2_sha256$99999999999$salt$" + "A" * 43 + "="),
        ("argon2_over_bound", "argon2$argon2id$v=19$m=99999999,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g"),
        ("bcrypt_cost31", "bcrypt_sha256$$2b$31$" + "a" * 53)):
    write("fuzz_password_hash", name, b"\x00\x03abc" + encoding.encode())
write("fuzz_password_hash", "mode_pbkdf2", b"\x81\x06\xe8\x03\x03abc\x05salty\x10\x41")
write("fuzz_password_hash", "mode_argon2", b"\x02\x0a\x05\x20\x08saltsalt\x03abc")
write("fuzz_password_hash", "mode_bcrypt", b"\x03\x01" + b"e" * 16 + b"\x03abc")

# fuzz_django_import: the fixture and cuts of it.
def user(pk, name, **extra):
    fields = {"password": "!x", "last_login": None, "is_superuser": False,
              "username": name, "email": "", "is_staff": False,
              "is_active": True, "date_joined": "2026-11-27T20:26:24.247Z"}
    fields.update(extra)
    return {"model": "auth.user", "pk": pk, "fields": fields}


def token(key, pk):
    return {"model": "authtoken.token", "pk": key,
            "fields": {"user": pk, "created": "2026-11-27T20:26:24.574Z"}}


users = [o for o in dump if o["model"] == "auth.user"]
tokens = [o for o in dump if o["model"] == "authtoken.token"]
variants = {
    "fixture.json": dump_text,
    "compact.json": json.dumps(dump, separators=(",", ":")),
    "tokens_first.json": json.dumps(tokens + users),
    "users_only.json": json.dumps(users, indent=1),
    "empty.json": "[]",
    "token_without_user.json": json.dumps(tokens[:1]),
    "truncated.json": dump_text[:700],
    "wrong_type.json": json.dumps([user(1, "a", is_active="yes")]),
    "duplicate_key.json": json.dumps([user(1, "a"), user(2, "b"),
                                      token(KEY, 1), token(KEY, 2)]),
    "other_model.json": json.dumps([{"model": "auth.group", "pk": 1, "fields": {}}]),
    "unicode_ok.json": json.dumps([user(7, "\u00e9l\u00e8ve"), token(KEY, 7)],
                                  ensure_ascii=False),
    "not_an_array.json": json.dumps({"model": "auth.user"}),
}
for name, text in variants.items():
    write("fuzz_django_import", name, text.encode())


# fuzz_cache_zone: a zone-size byte, then operations (see the target's
# header): 0 lookup KEY; 2 answer PENDING VERDICT [USER-LEN USER UID-HI
# UID-LO] EXPIRES POLICY STALE; 4 stale KEY; 5 revoke KEY SEQ; 6 check SEQ
# (0xff: invalidate); 7 tick T (0x80 | seconds, or 37 ms steps).
def lookup(k):
    return bytes([0, k])


def answer(verdict, user=b"", uid=(0, 7), expires=0, policy=3, stale=1):
    out = bytes([2, 0, verdict])
    if verdict != 2:  # not unknown: a user and a uid
        out += bytes([len(user)]) + user + bytes(uid)
    return out + bytes([expires, policy, stale])


def tick(t):
    return bytes([7, t])


cache_seeds = {
    # found, hit, a second later, revoked (message 1), then asked stale
    "store-hit-revoke": bytes([0]) + lookup(1) + answer(0, b"alice")
    + lookup(1) + tick(0x81) + lookup(1) + bytes([5, 1, 1]) + lookup(1)
    + bytes([4, 1]),
    # a token expiring one second from now, asked across that second
    "token-expiry": bytes([0]) + lookup(2) + answer(0, b"bob", expires=5)
    + lookup(2) + tick(0x81) + lookup(2) + tick(27) + lookup(2),
    # a revocation overtakes a lookup in flight
    "revocation-overtakes": bytes([0]) + lookup(3) + bytes([5, 3, 2])
    + answer(0, b"carol") + lookup(3),
    # first sequence check, a gap, a lost subscription
    "sequence-gap": bytes([0, 6, 3]) + lookup(4) + answer(1, b"dave")
    + bytes([6, 5]) + lookup(4) + bytes([4, 4]) + lookup(4)
    + answer(0, b"dave") + bytes([6, 0xff]) + lookup(4),
    # a flood of unknown keys, then the share is counted
    "unknown-flood": bytes([0]) + b"".join(
        lookup(k) + answer(2, policy=0x38, stale=0) for k in range(128)),
    # a small zone filled with long user names: eviction
    "full-zone": bytes([0]) + b"".join(
        lookup(k) + answer(0, bytes([0x61 + k % 26]) * 200, policy=7)
        for k in range(128)),
}
for name, data in cache_seeds.items():
    write("fuzz_cache_zone", name, data)
