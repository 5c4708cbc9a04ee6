"""DingTalk and Feishu robot signatures computed the way the vendors' own samples do, with nothing but Python's
standard library, as the independent side of tests/crosscheck.rs.

DingTalk (加签): string_to_sign = f"{timestamp_ms}\n{secret}";
    sign = quote_plus(b64encode(HMAC-SHA256(key=secret, msg=string_to_sign))), sent as &timestamp=…&sign=….
Feishu: string_to_sign = f"{timestamp_s}\n{secret}"; sign = b64encode(HMAC-SHA256(key=string_to_sign, msg=b"")).

Reads {"dingtalk": [{"secret", "timestamp_ms"}], "feishu": [{"secret", "timestamp_secs"}]} on stdin and writes the
signatures, in the same order, as JSON on stdout.
"""

import base64
import hashlib
import hmac
import json
import sys
import urllib.parse


def dingtalk(secret, timestamp_ms):
    string_to_sign = "{}\n{}".format(timestamp_ms, secret)
    digest = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), digestmod=hashlib.sha256).digest()
    sign = base64.b64encode(digest).decode("ascii")
    return {"sign": sign, "query_suffix": "&timestamp={}&sign={}".format(timestamp_ms, urllib.parse.quote_plus(sign))}


def feishu(secret, timestamp_secs):
    string_to_sign = "{}\n{}".format(timestamp_secs, secret)
    digest = hmac.new(string_to_sign.encode("utf-8"), b"", digestmod=hashlib.sha256).digest()
    return {"sign": base64.b64encode(digest).decode("ascii")}


request = json.load(sys.stdin)
json.dump(
    {
        "dingtalk": [dingtalk(case["secret"], case["timestamp_ms"]) for case in request["dingtalk"]],
        "feishu": [feishu(case["secret"], case["timestamp_secs"]) for case in request["feishu"]],
    },
    sys.stdout,
)
