using System.Buffers.Binary;

namespace MoeSharp.Tensors;

/// <summary>
/// Reads safetensors bytes into <see cref="Tensor"/>s: the 8-byte header length, the header
/// (<see cref="SafetensorsHeader"/>), then each tensor's bytes copied straight into its storage.
/// </summary>
internal static class SafetensorsReader
{
    /// <summary>Reads from the stream's current position to its end.</summary>
    public static SafetensorsContent Read(Stream stream, string sourceName)
    {
        // A seekable stream tells its length up front, so truncation is reported as a header error before any
        // tensor is allocated; other streams find out while reading.
        long? remaining = stream.CanSeek ? stream.Length - stream.Position : null;

        Span<byte> prefix = stackalloc byte[8];
        int got = stream.ReadAtLeast(prefix, prefix.Length, throwOnEndOfStream: false);
        long headerLength = ReadHeaderLength(prefix[..got], sourceName, remaining);

        byte[] json = new byte[headerLength];
        got = stream.ReadAtLeast(json, json.Length, throwOnEndOfStream: false);
        if (got < json.Length)
        {
            throw HeaderBeyondFile(sourceName, headerLength, 8 + got);
        }

        SafetensorsHeader header = SafetensorsHeader.Parse(json, sourceName, remaining - 8 - headerLength);
        var tensors = new List<KeyValuePair<string, Tensor>>(header.Entries.Count);
        foreach (SafetensorsEntry entry in header.Entries)
        {
            // Entries tile the data block in order, so reading them one after another walks it sequentially.
            Tensor tensor = Tensor.Uninitialized(entry.DType, entry.Shape);
            long read = TensorByteChunks.Visit(
                tensor,
                chunk => stream.ReadAtLeast(chunk, chunk.Length, throwOnEndOfStream: false)
            );
            if (read < entry.ByteLength)
            {
                throw SafetensorsFormatError.Create(
                    sourceName,
                    entry.Name,
                    $"data_offsets {entry.OffsetsText} go beyond the data block, which ends after {entry.Begin + read} bytes"
                );
            }
            tensors.Add(new(entry.Name, tensor));
        }

        if (remaining is null && stream.ReadByte() >= 0)
        {
            throw SafetensorsFormatError.Create(
                sourceName,
                null,
                $"the data block goes on after byte {header.DataLength}, the end of the last tensor: those bytes belong to no tensor"
            );
        }
        return new SafetensorsContent(sourceName, tensors, header.Metadata);
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
