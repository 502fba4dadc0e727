"""Neural pieces: the shallow random encoder, losses, VGGish."""
