/// CRC-32C (Castagnoli) for other modules of this package, e.g. the model registry's streamed
/// uploads and downloads: the same SIMD/hardware kernel the model file format uses.
package enum Checksum {
    /// CRC-32C of `bytes`, continuing from `crc` (0 to start): feeding a file in chunks gives the
    /// same value as feeding it whole. - Complexity: O(bytes).
    package static func crc32c(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        Kernels.crc32c(bytes, continuing: crc)
    }
}
