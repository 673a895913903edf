"""Known-answer vectors for the ChaCha20, SHA-256 and AES-256 primitives.

Every vector here is also checked by cpp/tests/test_primitives.cpp.
Sources: RFC 8439 sections 2.3.2 and 2.4.2 and appendix A.1 (#1, #2);
FIPS 180-4 / NIST example digests for SHA-256; FIPS 197 appendices A.3 and
C.3 and NIST SP 800-38A F.5.5 for AES-256.

Intended for bindings chacha20_block(key: bytes, counter: int, nonce: bytes)
-> bytes and sha256(data: bytes) -> bytes. Hex strings are lowercase with no
separators; use bytes.fromhex().
"""

CHACHA20_BLOCK_VECTORS = [
    {
        # RFC 8439 section 2.3.2
        "key": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "nonce": "000000090000004a00000000",
        "counter": 1,
        "block": (
            "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
            "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
        ),
    },
    {
        # RFC 8439 appendix A.1, test vector #1
        "key": "0000000000000000000000000000000000000000000000000000000000000000",
        "nonce": "000000000000000000000000",
        "counter": 0,
        "block": (
            "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
            "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
        ),
    },
    {
        # RFC 8439 appendix A.1, test vector #2
        "key": "0000000000000000000000000000000000000000000000000000000000000000",
        "nonce": "000000000000000000000000",
        "counter": 1,
        "block": (
            "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed"
            "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f"
        ),
    },
]

CHACHA20_ENCRYPT_VECTORS = [
    {
        # RFC 8439 section 2.4.2: ciphertext = plaintext XOR keystream starting
        # at block `counter`.
        "key": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "nonce": "000000000000004a00000000",
        "counter": 1,
        "plaintext": (
            b"Ladies and Gentlemen of the class of '99: If I could offer you "
            b"only one tip for the future, sunscreen would be it."
        ).hex(),
        "ciphertext": (
            "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
            "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
            "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
            "5af90bbf74a35be6b40b8eedf2785e42874d"
        ),
    },
]

SHA256_VECTORS = [
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ),
    (b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
]

# FIPS 197 appendix C.3 (AES-256 example: key 00..1f, one block).
AES256_BLOCK_VECTOR = {
    "key": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    "plaintext": "00112233445566778899aabbccddeeff",
    "ciphertext": "8ea2b7ca516745bfeafc49904b496089",
}

# FIPS 197 appendix A.3 (AES-256 key expansion): the key and the last four words w[56..59].
AES256_KEY_EXPANSION_VECTOR = {
    "key": "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
    "last_words": "fe4890d1e6188d0b046df344706c631e",
}

# NIST SP 800-38A F.5.5 CTR-AES256.Encrypt: key, initial counter block, four blocks.
AES256_CTR_VECTOR = {
    "key": "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
    "counter_block": "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
    "plaintext": (
        "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
        "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710"
    ),
    "ciphertext": (
        "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5"
        "2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"
    ),
}
