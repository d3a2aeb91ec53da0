#!/usr/bin/env python3
"""A client of keyturnd's HTTP door, written as the AWS Secrets Manager
Agent's documentation shows one: a GET of
http://localhost:PORT/secretsmanager/get?secretId=ID with the token file's
content in the X-Aws-Parameters-Secrets-Token header, and
json.loads(response)["SecretString"]. Standard library only (urllib), so
that a test shows what an application written for the Agent sees.

  agentclient.py --port PORT --token-file FILE [--as-user USER]
                 [--version-stage S] [--version-id V] [--refresh-now]
                 [--timeout S] SECRET_ID

Prints the SecretString and exits 0. On an HTTP error prints one line,
"STATUS BODY", and exits 1; when no answer came at all (refused, timed out)
prints "no answer: REASON" and exits 2 (2 as well when the token file
cannot be read). With --as-user (root only) it
becomes that user first, so that it reads the token file as that user, and
keyturnd sees that uid.
"""

import argparse
import encodings.idna  # noqa: F401 -- see below
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ktclient  # noqa: E402 -- for become_user, after the path is set

# socket.getaddrinfo loads the idna codec on first use; after --as-user the
# interpreter's own files may be out of reach (pyenv under /root), so it is
# imported above, while still root.


def read_token(token_file):
    """The SSRF token, from the token file."""
    with open(token_file) as fp:
        return fp.read().strip()


def get_secret(port, token, secret_id, params, timeout):
    """The Agent documentation's example, with urllib for requests."""
    query = "secretId=" + secret_id
    if params:
        query += "&" + urllib.parse.urlencode(params)
    url = f"http://localhost:{port}/secretsmanager/get?{query}"
    headers = {"X-Aws-Parameters-Secrets-Token": token}

    # No proxy from the environment: the Agent is always on this host.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers=headers, method="GET")
    with opener.open(request, timeout=timeout) as response:
        return json.loads(response.read())["SecretString"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token-file", required=True)
    p.add_argument("--as-user")
    p.add_argument("--version-stage")
    p.add_argument("--version-id")
    p.add_argument("--refresh-now", action="store_true")
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("secret_id")
    a = p.parse_args()

    if a.as_user:
        ktclient.become_user(a.as_user)
    params = {}
    if a.version_id:
        params["versionId"] = a.version_id
    if a.version_stage:
        params["versionStage"] = a.version_stage
    if a.refresh_now:
        params["refreshNow"] = "true"
    try:
        token = read_token(a.token_file)
    except OSError as e:
        print("cannot read the token file: %s" % e)
        return 2
    try:
        value = get_secret(a.port, token, a.secret_id, params, a.timeout)
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace").replace("\n", " ")
        print(e.code, body)
        return 1
    except (urllib.error.URLError, OSError) as e:
        print("no answer: %s" % getattr(e, "reason", e))
        return 2
    print(value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
