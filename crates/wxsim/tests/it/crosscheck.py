"""The simulator judged by a client we did not write: PyPI `wechatpayv3` in service-provider mode downloads the
simulator's certificates, queries a complaint, refunds (twice, to see the same refund), and its `callback()` checks
the simulator's callbacks. Reads the simulator's setup and the test's fixtures as JSON on stdin; writes results."""

import json
import os
import sys
import tempfile

from wechatpayv3 import WeChatPay, WeChatPayType


def client(setup, public_key):
    cert_dir = tempfile.mkdtemp()
    # wechatpayv3 would download certificates from the real host at start; hand it the simulator's instead.
    with open(os.path.join(cert_dir, setup["platform_cert_serial"] + ".pem"), "w") as f:
        f.write(setup["platform_cert_pem"])
    extra = {"public_key": setup["wechatpay_public_key_pem"], "public_key_id": setup["wechatpay_public_key_id"]} if public_key else {"cert_dir": cert_dir}
    pay = WeChatPay(wechatpay_type=WeChatPayType.NATIVE, mchid=setup["mchid"], private_key=setup["merchant_private_key_pem"],
                    cert_serial_no=setup["merchant_cert_serial"], appid=setup["appid"], apiv3_key=setup["apiv3_key"],
                    partner_mode=True, **extra)
    pay._core._gate_way = setup["wechatpay_base_url"]
    return pay


def main():
    request = json.load(sys.stdin)
    setup = request["setup"]
    results = {}

    pay = client(setup, public_key=False)
    pay._core._update_certificates()
    results["downloaded_serials"] = [format(c.serial_number, "X") for c in pay._core._certificates]

    code, text = pay.complaint_detail_query(request["complaint_id"])
    results["detail"] = {"status": code, "body": json.loads(text)}

    refund = dict(out_refund_no="PY-REFUND-1", amount={"refund": 100, "total": request["total"], "currency": "CNY"},
                  transaction_id=request["transaction_id"], sub_mchid=request["sub_mchid"], reason="cross-check")
    code, text = pay.refund(**refund)
    results["refund"] = {"status": code, "body": json.loads(text)}
    code, text = pay.refund(**refund)
    results["refund_again"] = {"status": code, "body": json.loads(text)}
    code, text = pay.query_refund("PY-REFUND-1", sub_mchid=request["sub_mchid"])
    results["refund_query"] = {"status": code, "body": json.loads(text)}

    public = client(setup, public_key=True)
    code, text = public.complaint_detail_query(request["complaint_id"])
    results["detail_public_key"] = {"status": code}

    results["callbacks"] = []
    for callback in request["callbacks"]:
        checker = public if callback["public_key"] else pay
        accepted = checker.callback(callback["headers"], callback["body"])
        tampered = checker.callback(callback["headers"], callback["body"].replace("EV-", "EW-", 1))
        results["callbacks"].append({"accepted": accepted, "tampered": tampered})
    json.dump(results, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
