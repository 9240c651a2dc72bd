using System.Buffers.Binary;

namespace MoeSharp.Tensors;

/// <summary>
/// Reads safetensors bytes into <see cref="Tensor"/>s: the 8-byte header length, the header
/// (<see cref="SafetensorsHeader"/>), then each tensor's bytes copied straight into its storage (from a stream of
/// unknown length, half of them by way of <see cref="ArrivedBytes"/>).
/// </summary>
internal static class SafetensorsReader
{
    /// <summary>Reads from the stream's current position to its end.</summary>
    public static SafetensorsContent Read(Stream stream, string sourceName)
    {
        // A seekable stream tells its length up front, so truncation is reported as a header error before any
        // tensor is allocated; other streams find out while reading, and allocate only as bytes arrive.
        bool lengthKnown = stream.CanSeek;
        SafetensorsHeader header = ReadHeader(stream, sourceName);
        var tensors = new List<KeyValuePair<string, Tensor>>(header.Entries.Count);
        foreach (SafetensorsEntry entry in header.Entries)
        {
            // Entries tile the data block in order, so reading them one after another walks it sequentially.
            tensors.Add(new(entry.Name, ReadTensor(stream, entry, sourceName, lengthKnown)));
        }

        if (!lengthKnown && stream.ReadByte() >= 0)
        {
            throw SafetensorsFormatError.Create(
                sourceName,
                null,
                $"the data block goes on after byte {header.DataLength}, the end of the last tensor: those bytes belong to no tensor"
            );
        }
        return new SafetensorsContent(sourceName, tensors, header.Metadata);
    }

    /// <summary>
    /// Reads and checks the header at the stream's position as <see cref="Read(Stream, string)"/> does (entries that
    /// overlap or leave holes are errors, and on a seekable stream entries past its end), leaving the stream at the
    /// data block, none of which is read.
    /// </summary>
    /// <exception cref="InvalidDataException">The header is malformed or disagrees with the stream's
    /// length.</exception>
    public static SafetensorsHeader ReadHeader(Stream stream, string sourceName)
    {
        long? remaining = stream.CanSeek ? stream.Length - stream.Position : null;
        Span<byte> prefix = stackalloc byte[8];
        int got = stream.ReadAtLeast(prefix, prefix.Length, throwOnEndOfStream: false);
        long headerLength = ReadHeaderLength(prefix[..got], sourceName, remaining);
        byte[] json = ReadHeader(stream, headerLength, sourceName, lengthKnown: remaining is not null);
        return SafetensorsHeader.Parse(json, sourceName, remaining - 8 - headerLength);
    }

    /// <summary>
    /// Reads the JSON header. A stream of known length has already shown it holds the header; for another, the bytes
    /// are kept as they arrive, so a length field that claims up to <see cref="SafetensorsHeader.MaxHeaderBytes"/>
    /// costs only what the stream delivers.
    /// </summary>
    private static byte[] ReadHeader(Stream stream, long headerLength, string sourceName, bool lengthKnown)
    {
        if (lengthKnown)
        {
            byte[] json = new byte[headerLength];
            int got = stream.ReadAtLeast(json, json.Length, throwOnEndOfStream: false);
            return got == json.Length ? json : throw HeaderBeyondFile(sourceName, headerLength, 8 + got);
        }
        ArrivedBytes arrived = ArrivedBytes.Read(stream, headerLength);
        return arrived.Length == headerLength
            ? arrived.ToArray()
            : throw HeaderBeyondFile(sourceName, headerLength, 8 + arrived.Length);
    }

    /// <summary>
    /// Reads the tensor whose bytes come next in the stream. A stream of known length has already shown it holds
    /// them, so they go straight into the tensor. For another, only the header vouches for the size: the tensor is not
    /// allocated until half its bytes have arrived (held meanwhile in <see cref="ArrivedBytes"/>), so a stream that
    /// ends early costs about twice what it delivered, not what the header claimed. Such a tensor briefly takes 1.5
    /// times its size.
    /// </summary>
    private static Tensor ReadTensor(Stream stream, SafetensorsEntry entry, string sourceName, bool lengthKnown)
    {
        long staging = lengthKnown ? 0 : entry.ByteLength / 2;
        ArrivedBytes staged = ArrivedBytes.Read(stream, staging);
        long read = staged.Length;
        if (read == staging)
        {
            Tensor tensor = Tensor.Uninitialized(entry.DType, entry.Shape);
            read = TensorByteChunks.Visit(
                tensor,
                chunk =>
                {
                    int moved = staged.Drain(chunk);
                    return moved + stream.ReadAtLeast(chunk[moved..], chunk.Length - moved, throwOnEndOfStream: false);
                }
            );
            if (read == entry.ByteLength)
                return tensor;
        }
        throw SafetensorsFormatError.Create(
            sourceName,
            entry.Name,
            $"data_offsets {entry.OffsetsText} go beyond the data block, which ends after {entry.Begin + read} bytes"
        );
    }

    /// <summary>Reads a whole file held in memory.</summary>
    public static SafetensorsContent Read(ReadOnlySpan<byte> file, string sourceName)
    {
        long headerLength = ReadHeaderLength(file[..Math.Min(8, file.Length)], sourceName, file.Length);
        ReadOnlySpan<byte> data = file[(8 + (int)headerLength)..];
        SafetensorsHeader header = SafetensorsHeader.Parse(file.Slice(8, (int)headerLength), sourceName, data.Length);
        var tensors = new List<KeyValuePair<string, Tensor>>(header.Entries.Count);
        foreach (SafetensorsEntry entry in header.Entries)
        {
            Tensor tensor = Tensor.Uninitialized(entry.DType, entry.Shape);
            data.Slice((int)entry.Begin, (int)entry.ByteLength).CopyTo(tensor.AsBytes());
            tensors.Add(new(entry.Name, tensor));
        }
        return new SafetensorsContent(sourceName, tensors, header.Metadata);
    }

    /// <param name="prefix">The first bytes of the file, at most 8.</param>
    /// <param name="sourceName">File name for messages.</param>
    /// <param name="fileLength">The file's length when known.</param>
    private static long ReadHeaderLength(ReadOnlySpan<byte> prefix, string sourceName, long? fileLength)
    {
        if (prefix.Length < 8)
        {
            throw SafetensorsFormatError.Create(
                sourceName,
                null,
                $"file is {prefix.Length} bytes, shorter than the 8-byte header length that starts every safetensors file"
            );
        }
        ulong length = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (length > SafetensorsHeader.MaxHeaderBytes)
        {
            throw SafetensorsFormatError.Create(
                sourceName,
                null,
                $"header length {length} is over the {SafetensorsHeader.MaxHeaderBytes}-byte limit (not a safetensors file, or a corrupt one)"
            );
        }
        if (fileLength is long total && (long)length > total - 8)
        {
            throw HeaderBeyondFile(sourceName, (long)length, total);
        }
        return (long)length;
    }

    private static InvalidDataException HeaderBeyondFile(string sourceName, long headerLength, long fileLength) =>
        SafetensorsFormatError.Create(
            sourceName,
            null,
            $"header length {headerLength} goes beyond the end of the file, which has {fileLength} bytes"
        );
}
