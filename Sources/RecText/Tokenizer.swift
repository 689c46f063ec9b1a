/// Splits text into word tokens the way scikit-learn's default `token_pattern`
/// `(?u)\b\w\w+\b` does after `str.lower()`: maximal runs of two or more word characters, where
/// a word character is a letter (Unicode categories Lu, Ll, Lt, Lm, Lo), a character with a
/// numeric value (Nd, Nl, No and numeric ideographs) or the underscore — Python's `\w`.
/// Everything else (punctuation, spaces, symbols, emoji, combining marks) separates tokens, so
/// "don't" gives "don", and one-character runs are dropped.
///
/// Lowercasing is Python's `str.lower()`: the full Unicode lowercase mapping of each scalar
/// (İ becomes i + U+0307), with the context-dependent final sigma (Σ at the end of a word
/// becomes ς). No normalization is applied, as in scikit-learn's default.
///
/// ASCII is handled by table lookups on UTF-8 bytes; other scalars go through the Unicode
/// properties. Tokens are handed out as UTF-8 bytes in a reused buffer: tokenizing allocates
/// nothing per token.
public struct Tokenizer: Sendable {
    /// Whether text is lowercased before splitting.
    public let lowercase: Bool

    /// A tokenizer that lowercases (scikit-learn's default) or keeps case.
    public init(lowercase: Bool = true) {
        self.lowercase = lowercase
    }

    /// The tokens of `text`, in order, as strings. - Complexity: O(text length).
    public func tokens(_ text: String) -> [String] {
        var tokens: [String] = []
        forEachToken(in: text) { tokens.append(String(decoding: $0, as: UTF8.self)) }
        return tokens
    }

    /// Calls `body` with each token's UTF-8 bytes (valid only during the call), in order.
    ///
    /// - Complexity: O(text length).
    public func forEachToken(in text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        var text = text
        text.withUTF8 { bytes in
            var state = TokenizerState()
            state.token.reserveCapacity(64)
            var i = 0
            let n = bytes.count
            while i < n {
                let byte = bytes[i]
                if byte < 0x80 {
                    let flags = asciiFlags[Int(byte)]
                    if flags & AsciiFlag.word != 0 {
                        state.token.append(lowercase && flags & AsciiFlag.upper != 0 ? byte | 0x20 : byte)
                        state.scalars += 1
                    } else {
                        state.flush(body)
                    }
                    // Final-sigma context: letters are cased, a few ASCII marks are case-ignorable.
                    if flags & AsciiFlag.letter != 0 { state.previousCased = true }
                    else if flags & AsciiFlag.caseIgnorable == 0 { state.previousCased = false }
                    i += 1
                    continue
                }
                let (scalar, length) = decodeScalar(bytes, at: i)
                i += length
                let properties = scalar.properties
                if lowercase && properties.changesWhenLowercased {
                    if scalar.value == 0x03A3 {
                        let final = state.previousCased && !casedLetterFollows(bytes, from: i)
                        state.add(Unicode.Scalar(final ? 0x03C2 : 0x03C3)!, body)
                    } else {
                        for lowered in properties.lowercaseMapping.unicodeScalars { state.add(lowered, body) }
                    }
                } else {
                    state.add(scalar, body)
                }
                if properties.isCased { state.previousCased = true }
                else if !properties.isCaseIgnorable { state.previousCased = false }
            }
            state.flush(body)
        }
    }

    /// Whether a cased scalar follows position `i`, skipping case-ignorable ones (the second
    /// half of Unicode's Final_Sigma condition).
    private func casedLetterFollows(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Bool {
        var i = start
        while i < bytes.count {
            let (scalar, length) = decodeScalar(bytes, at: i)
            if scalar.properties.isCased { return true }
            if !scalar.properties.isCaseIgnorable { return false }
            i += length
        }
        return false
    }
}

/// Whether `scalar` is a word character of Python's `\w` (see ``Tokenizer``).
func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
    if scalar.value < 0x80 { return asciiFlags[Int(scalar.value)] & AsciiFlag.word != 0 }
    switch scalar.properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
    default: return scalar.properties.numericType != nil
    }
}

/// The token being built while scanning.
private struct TokenizerState {
    var token: [UInt8] = []
    var scalars = 0
    var previousCased = false

    mutating func add(_ scalar: Unicode.Scalar, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        if isWordCharacter(scalar) {
            appendUTF8(scalar)
            scalars += 1
        } else {
            flush(body)
        }
    }

    mutating func flush(_ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        if scalars >= 2 { token.withUnsafeBufferPointer(body) }
        token.removeAll(keepingCapacity: true)
        scalars = 0
    }

    private mutating func appendUTF8(_ scalar: Unicode.Scalar) {
        let v = scalar.value
        switch v {
        case ..<0x80: token.append(UInt8(v))
        case ..<0x800: token.append(contentsOf: [UInt8(0xC0 | v >> 6), UInt8(0x80 | v & 0x3F)])
        case ..<0x10000:
            token.append(contentsOf: [UInt8(0xE0 | v >> 12), UInt8(0x80 | v >> 6 & 0x3F), UInt8(0x80 | v & 0x3F)])
        default:
            token.append(contentsOf: [UInt8(0xF0 | v >> 18), UInt8(0x80 | v >> 12 & 0x3F), UInt8(0x80 | v >> 6 & 0x3F),
                                      UInt8(0x80 | v & 0x3F)])
        }
    }
}

/// Decodes the scalar starting at `i` of valid UTF-8 (Swift strings always are).
@inline(__always)
private func decodeScalar(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> (Unicode.Scalar, Int) {
    let lead = UInt32(bytes[i])
    let value: UInt32, length: Int
    if lead < 0xE0 {
        value = (lead & 0x1F) << 6 | UInt32(bytes[i + 1] & 0x3F)
        length = 2
    } else if lead < 0xF0 {
        value = (lead & 0x0F) << 12 | UInt32(bytes[i + 1] & 0x3F) << 6 | UInt32(bytes[i + 2] & 0x3F)
        length = 3
    } else {
        value = (lead & 0x07) << 18 | UInt32(bytes[i + 1] & 0x3F) << 12 | UInt32(bytes[i + 2] & 0x3F) << 6
            | UInt32(bytes[i + 3] & 0x3F)
        length = 4
    }
    return (Unicode.Scalar(value) ?? "\u{FFFD}", length)
}

private enum AsciiFlag {
    static let word: UInt8 = 1
    static let upper: UInt8 = 2
    static let letter: UInt8 = 4
    static let caseIgnorable: UInt8 = 8
}

/// Per ASCII byte: word character, uppercase letter, letter (cased), case-ignorable.
private let asciiFlags: [UInt8] = (0 ..< 128).map { (code: Int) -> UInt8 in
    let c = UInt8(code)
    var flags: UInt8 = 0
    let upper = c >= 65 && c <= 90, lower = c >= 97 && c <= 122, digit = c >= 48 && c <= 57
    if upper || lower || digit || c == 95 { flags |= AsciiFlag.word }
    if upper { flags |= AsciiFlag.upper }
    if upper || lower { flags |= AsciiFlag.letter }
    if [0x27, 0x2E, 0x3A, 0x5E, 0x60].contains(c) { flags |= AsciiFlag.caseIgnorable }
    return flags
}
