"""Create the sqlite database for tools/bench's DRF row: migrate, then one
user + one DRF Token per line of the key files, with bulk_create.

  BENCH_DRF_DB=/tmp/x.sqlite3 python3 seed.py ACTIVE_KEYS INACTIVE_KEYS
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchdrf.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

t0 = time.monotonic()
call_command("migrate", verbosity=0, interactive=False)
with connection.cursor() as c:
    c.execute("PRAGMA journal_mode=OFF")
    c.execute("PRAGMA synchronous=OFF")

def read(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]

active, inactive = read(sys.argv[1]), read(sys.argv[2])
users, tokens = [], []
uid = 0
for keys, is_active in ((active, True), (inactive, False)):
    for key in keys:
        uid += 1
        users.append(User(id=uid, username="user%d" % uid, password="!",
                          is_active=is_active))
        tokens.append(Token(key=key, user_id=uid))
with transaction.atomic():
    User.objects.bulk_create(users, batch_size=5000)
    Token.objects.bulk_create(tokens, batch_size=5000)
print("seeded %d users and tokens in %.1fs" % (uid, time.monotonic() - t0))
