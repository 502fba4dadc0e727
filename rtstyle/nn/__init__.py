"""Neural pieces: the shallow random encoder, losses, the causal transform net, VGGish."""
