"""QR codes: encoding, phone-like captures, decoders, the scan verifier, repair, restamping, images, downloads."""
