"""Online inference: request records checked against the contract, production models verified
and cached per warm container, sampled traffic captured for drift monitoring."""
