"""Online payments: WeChat Pay v3 and Alipay, exactly once, reconciled (在线支付)."""
