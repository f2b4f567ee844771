"""The transparency log: every money fact in an append-only Merkle tree (RFC 9162), signed
checkpoints cosigned by independent witnesses, tiles anyone can mirror and re-verify
(../shared/docs/LEDGER.md). Not to be confused with ``finance``, the books."""
