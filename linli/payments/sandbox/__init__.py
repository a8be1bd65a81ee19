"""Local fakes of the payment providers (微信支付, 支付宝): their wire protocol, own keys."""
