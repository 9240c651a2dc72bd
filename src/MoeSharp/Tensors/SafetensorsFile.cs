namespace MoeSharp.Tensors;

/// <summary>
/// Reads and writes <c>.safetensors</c> files: an 8-byte little-endian header length, a UTF-8 JSON header
/// (name → dtype, shape, data offsets, plus an optional <c>__metadata__</c> map of strings), then the raw
/// little-endian tensor bytes. Supports the dtypes <see cref="Tensor"/> stores: F32, BF16, I32, I64.
/// </summary>
/// <remarks>
/// Reading validates as strictly as the reference implementation (huggingface/safetensors): malformed input
/// throws <see cref="InvalidDataException"/> naming the file, the tensor and the bad value. Writing lays
/// the tensors out in the order given and never leaves a half-written file behind.
/// </remarks>
public static class SafetensorsFile
{
    /// <summary>Reads a safetensors file.</summary>
    /// <param name="path">The file to read.</param>
    /// <exception cref="InvalidDataException">The file is malformed or holds an unsupported dtype.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static SafetensorsContent Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var stream = new FileStream(
            path,
            FileMode.Open,
            FileAccess.Read,
            FileShare.Read,
            bufferSize: 1 << 16,
            FileOptions.SequentialScan
        );
        return SafetensorsReader.Read(stream, path);
    }

    /// <summary>Reads safetensors bytes from the stream's current position to its end.</summary>
    /// <remarks>
    /// A stream that cannot seek (a pipe) cannot show up front that it holds the sizes its header claims, so memory is
    /// taken as the bytes arrive: a stream that ends early fails having allocated about twice what it delivered, and a
    /// tensor that does arrive whole briefly takes 1.5 times its size while it is read.
    /// </remarks>
    /// <param name="stream">The stream; need not be seekable.</param>
    /// <param name="sourceName">A name for the stream in error messages.</param>
    /// <exception cref="InvalidDataException">The bytes are malformed or hold an unsupported dtype.</exception>
    public static SafetensorsContent ReadFrom(Stream stream, string sourceName = "<stream>")
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(sourceName);
        return SafetensorsReader.Read(stream, sourceName);
    }

    /// <summary>Reads a whole safetensors file held in memory.</summary>
    /// <param name="bytes">The file's bytes.</param>
    /// <param name="sourceName">A name for the buffer in error messages.</param>
    /// <exception cref="InvalidDataException">The bytes are malformed or hold an unsupported dtype.</exception>
    public static SafetensorsContent ReadFrom(ReadOnlySpan<byte> bytes, string sourceName = "<memory>")
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        return SafetensorsReader.Read(bytes, sourceName);
    }

    /// <summary>
    /// Writes tensors to <paramref name="path"/>, replacing any existing file atomically: the bytes go to a
    /// temporary file in the same folder that is renamed over the target only once complete.
    /// </summary>
    /// <param name="path">The file to write.</param>
    /// <param name="tensors">Name/tensor pairs, laid out in this order. A <see cref="SafetensorsContent"/>
    /// works.</param>
    /// <param name="metadata">The <c>__metadata__</c> map; null or empty writes none.</param>
    /// <exception cref="ArgumentException">A name is null, repeated or <c>__metadata__</c>, a tensor is null, or a
    /// metadata value is null. Nothing is written.</exception>
    /// <exception cref="IOException">The file cannot be written; an existing file is left as it was.</exception>
    public static void Write(
        string path,
        IEnumerable<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null
    )
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        // Prepare validates everything before the file system is touched.
        var (list, prefix) = SafetensorsWriter.Prepare(tensors, metadata);
        SafetensorsWriter.WriteFile(path, list, prefix);
    }

    /// <summary>Writes tensors in safetensors format to a stream at its current position.</summary>
    /// <param name="stream">The destination.</param>
    /// <param name="tensors">Name/tensor pairs, laid out in this order.</param>
    /// <param name="metadata">The <c>__metadata__</c> map; null or empty writes none.</param>
    /// <exception cref="ArgumentException">A name is null, repeated or <c>__metadata__</c>, a tensor is null, or a
    /// metadata value is null. Nothing is written.</exception>
    public static void WriteTo(
        Stream stream,
        IEnumerable<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null
    )
    {
        ArgumentNullException.ThrowIfNull(stream);
        var (list, prefix) = SafetensorsWriter.Prepare(tensors, metadata);
        SafetensorsWriter.Write(stream, list, prefix);
    }
}
