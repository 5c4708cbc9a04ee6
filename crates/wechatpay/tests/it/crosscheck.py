"""Cross-checks for the wechatpay crate, with implementations we did not write: PyPI `cryptography` and
`wechatpayv3`. Reads a JSON request on stdin, writes a JSON answer on stdout.

  produce: make what WeChat Pay would send (a platform certificate, a /v3/certificates answer, signed callbacks
           and their tampered variants, an encrypted payer_phone) and an Authorization header as wechatpayv3 signs.
  check:   judge what the crate made (its Authorization header, a callback it built, an OAEP ciphertext).
"""

import base64
import datetime
import json
import os
import re
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from wechatpayv3 import utils
from wechatpayv3.core import Core


def b64(data):
    return base64.b64encode(data).decode()


def platform_certificate():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tenpay.com"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Tenpay.com Root CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1825)).sign(key, hashes.SHA256()))
    return key, cert


def signed(key, body, serial, timestamp=None, nonce=None):
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or os.urandom(16).hex().upper()
    if isinstance(body, bytes):
        # Bytes that are not UTF-8: sign them as they are (wechatpayv3's helper takes text only).
        message = ("%s\n%s\n" % (timestamp, nonce)).encode() + body + b"\n"
        signature = b64(key.sign(message, padding.PKCS1v15(), hashes.SHA256()))
    else:
        signature = utils.rsa_sign(key, "%s\n%s\n%s\n" % (timestamp, nonce, body))
    return {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce, "Wechatpay-Signature": signature,
            "Wechatpay-Serial": serial, "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048"}


def encrypt_resource(apiv3_key, plaintext, associated_data):
    nonce = os.urandom(6).hex()
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext.encode(), associated_data.encode())
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": b64(ciphertext), "associated_data": associated_data, "nonce": nonce}


def callback(apiv3_key, event_type, original_type, resource):
    envelope = {"id": "EV-" + os.urandom(8).hex(), "create_time": "2026-11-27T13:26:46+08:00", "resource_type": "encrypt-resource",
                "event_type": event_type, "summary": "cross-check", "resource": encrypt_resource(apiv3_key, json.dumps(resource, ensure_ascii=False), "")}
    envelope["resource"]["original_type"] = original_type
    return json.dumps(envelope, ensure_ascii=False)


def produce(request):
    apiv3_key = request["apiv3_key"]
    merchant_key = utils.load_private_key(request["merchant_key_pem"])
    merchant_cert = x509.load_pem_x509_certificate(request["merchant_cert_pem"].encode())
    key, cert = platform_certificate()
    serial = format(cert.serial_number, "X")
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()

    certificates_body = json.dumps({"data": [{
        "serial_no": serial, "effective_time": "2026-11-26T00:00:00+08:00", "expire_time": "2031-11-26T00:00:00+08:00",
        "encrypt_certificate": encrypt_resource(apiv3_key, cert_pem, "certificate")}]})
    complaint = {"complaint_id": "200201820200101080076610000", "action_type": "CREATE_COMPLAINT"}
    violation = {"sub_mchid": "1900000109", "company_name": "某某科技有限公司", "record_id": "R-" + os.urandom(4).hex(),
                 "punish_plan": "暂停支付功能", "punish_time": "2026-11-27T10:00:00+08:00", "punish_description": "涉嫌欺诈",
                 "risk_type": "FRAUD", "risk_description": "欺诈"}
    refund = {"sp_mchid": "1900000100", "sub_mchid": "1900000109", "out_trade_no": "T1", "transaction_id": "4200000001",
              "out_refund_no": "CR-1", "refund_id": "5030", "refund_status": "SUCCESS", "success_time": "2026-11-27T10:00:00+08:00",
              "user_received_account": "支付用户零钱", "amount": {"total": 990, "refund": 990, "payer_total": 990, "payer_refund": 990}}

    callbacks = []

    def add(name, body, headers, expect, plaintext=None):
        raw = body.encode() if isinstance(body, str) else body
        callbacks.append({"name": name, "headers": headers, "body_b64": b64(raw), "expect": expect, "plaintext": plaintext})

    for event_type, original_type, resource in [("COMPLAINT.CREATE", "complaint", complaint), ("VIOLATION.PUNISH", "violation", violation),
                                                ("REFUND.SUCCESS", "refund", refund)]:
        body = callback(apiv3_key, event_type, original_type, resource)
        add("genuine " + event_type, body, signed(key, body, serial), "ok", resource)

    body = callback(apiv3_key, "COMPLAINT.STATE_CHANGE", "complaint", complaint)
    headers = signed(key, body, serial)
    add("tampered body", body.replace("STATE_CHANGE", "CREATE"), headers, "signature")
    add("tampered nonce", body, dict(headers, **{"Wechatpay-Nonce": headers["Wechatpay-Nonce"] + "X"}), "signature")
    add("tampered timestamp", body, dict(headers, **{"Wechatpay-Timestamp": str(int(headers["Wechatpay-Timestamp"]) - 1)}), "signature")
    add("unknown serial", body, dict(headers, **{"Wechatpay-Serial": "1" + serial}), "signature")
    add("signature probe", body, dict(headers, **{"Wechatpay-Signature": "WECHATPAY/SIGNTEST/" + headers["Wechatpay-Signature"]}), "signature")
    add("stale", body, signed(key, body, serial, timestamp=int(time.time()) - 600), "signature")
    add("missing nonce", body, {k: v for k, v in headers.items() if k != "Wechatpay-Nonce"}, "signature")
    add("signed by another key", body, signed(merchant_key, body, serial), "signature")

    wrong_key = callback("ZYXWVUTSRQPONMLKJIHGFEDCBA987654", "COMPLAINT.CREATE", "complaint", complaint)
    add("wrong APIv3 key", wrong_key, signed(key, wrong_key, serial), "decrypt")
    envelope = json.loads(callback(apiv3_key, "COMPLAINT.CREATE", "complaint", complaint))
    envelope["resource"]["ciphertext"] = envelope["resource"]["ciphertext"][:-12]
    truncated = json.dumps(envelope)
    add("truncated ciphertext", truncated, signed(key, truncated, serial), "decrypt")
    not_utf8 = b"\xff\xfe{\"id\":1}"
    add("not UTF-8", not_utf8, signed(key, not_utf8, serial), "malformed")

    detail = json.dumps({"complaint_id": "200201820200101080076610000", "complaint_time": "2026-11-27T10:00:00+08:00",
                         "complaint_state": "PENDING", "complainted_mchid": "1900000109"})
    authorization = utils.build_authorization("/v3/merchant-service/complaints-v2?limit=5&offset=0&begin_date=2026-11-01&end_date=2026-11-27",
                                              "GET", "1900000100", "5E7ABC0123456789ABCDEF0123456789ABCDEF01", merchant_key)
    return {
        "platform_cert_pem": cert_pem,
        "platform_serial": serial,
        "certificates_answer": {"headers": signed(key, certificates_body, serial), "body": certificates_body},
        "detail_answer": {"headers": signed(key, detail, serial), "body": detail},
        "callbacks": callbacks,
        "payer_phone": {"plaintext": "13800138000", "ciphertext": utils.rsa_encrypt("13800138000", merchant_cert.public_key())},
        "authorization": {"method": "GET", "url": "/v3/merchant-service/complaints-v2?limit=5&offset=0&begin_date=2026-11-01&end_date=2026-11-27",
                          "body": "", "header": authorization},
    }


def check_authorization(auth, cert_pem):
    header = auth["header"]
    if not header.startswith("WECHATPAY2-SHA256-RSA2048 "):
        return False
    fields = dict(re.findall(r'(\w+)="([^"]*)"', header))
    message = "%s\n%s\n%s\n%s\n%s\n" % (auth["method"], auth["url"], fields["timestamp"], fields["nonce_str"], auth["body"])
    public_key = x509.load_pem_x509_certificate(cert_pem.encode()).public_key()
    try:
        public_key.verify(base64.b64decode(fields["signature"]), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except Exception:
        return False
    return abs(int(fields["timestamp"]) - int(time.time())) < 300 and fields["mchid"] == "1900000100" and len(fields["nonce_str"]) == 32


def check(request):
    core = Core(mchid="1900000100", cert_serial_no="5E7ABC0123456789ABCDEF0123456789ABCDEF01", private_key=request["merchant_key_pem"],
                apiv3_key=request["apiv3_key"], public_key=request["public_key_pem"], public_key_id=request["public_key_id"])
    cb = request["callback"]
    plaintext = core.decrypt_callback(cb["headers"], cb["body"])
    tampered = core.decrypt_callback(cb["headers"], cb["body"].replace("EV-", "EW-"))
    platform_key = serialization.load_pem_private_key(request["platform_key_pem"].encode(), password=None)
    return {
        "authorization_ok": check_authorization(request["authorization"], request["merchant_cert_pem"]),
        "tampered_authorization_ok": check_authorization(dict(request["authorization"], body=request["authorization"]["body"] + " "),
                                                         request["merchant_cert_pem"]),
        "callback_plaintext": plaintext,
        "tampered_callback_plaintext": tampered,
        "sensitive_plaintext": utils.rsa_decrypt(request["sensitive_ciphertext"], platform_key),
    }


if __name__ == "__main__":
    command = sys.argv[1]
    request = json.load(sys.stdin)
    answer = produce(request) if command == "produce" else check(request)
    json.dump(answer, sys.stdout, ensure_ascii=False)
