;; A valid module with none of the ABI's exports.
(module (memory (export "memory") 1))
