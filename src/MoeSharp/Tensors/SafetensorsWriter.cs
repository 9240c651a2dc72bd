using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace MoeSharp.Tensors;

/// <summary>
/// Writes named tensors as a safetensors file, byte for byte as the reference implementation lays it out:
/// 8-byte little-endian header length, compact JSON header with <c>__metadata__</c> first, padded with spaces
/// to a multiple of 8 (so the data block, and every tensor in it, stays 8-byte aligned for memory mapping),
/// then the tensors' bytes in the order given.
/// </summary>
internal static class SafetensorsWriter
{
    // The header is a file format, not HTML: keep non-ASCII names readable instead of \u-escaping them.
    private static readonly JsonWriterOptions JsonOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Checks the arguments and builds the complete prefix (length and padded header).</summary>
    /// <exception cref="ArgumentException">A name is null, repeated or reserved, or a metadata value is
    /// null.</exception>
    public static (List<KeyValuePair<string, Tensor>> Tensors, byte[] Prefix) Prepare(
        IEnumerable<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata
    )
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = new List<KeyValuePair<string, Tensor>>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (KeyValuePair<string, Tensor> pair in tensors)
        {
            if (pair.Key is null)
                throw new ArgumentException($"tensor {list.Count} has a null name", nameof(tensors));
            if (pair.Key == SafetensorsHeader.MetadataKey)
            {
                throw new ArgumentException(
                    $"tensor {list.Count} is named '{SafetensorsHeader.MetadataKey}', which the format reserves for metadata",
                    nameof(tensors)
                );
            }
            if (pair.Value is null)
                throw new ArgumentException($"tensor '{pair.Key}' is null", nameof(tensors));
            if (!names.Add(pair.Key))
                throw new ArgumentException($"tensor name '{pair.Key}' appears twice", nameof(tensors));
            list.Add(pair);
        }
        if (metadata is not null)
        {
            foreach (KeyValuePair<string, string> item in metadata)
            {
                if (item.Value is null)
                    throw new ArgumentException($"metadata value for key '{item.Key}' is null", nameof(metadata));
            }
        }

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, JsonOptions))
        {
            json.WriteStartObject();
            // Like the reference, an absent or empty map writes no __metadata__ key at all.
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(SafetensorsHeader.MetadataKey);
                foreach (KeyValuePair<string, string> item in metadata)
                    json.WriteString(item.Key, item.Value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (KeyValuePair<string, Tensor> pair in list)
            {
                Tensor tensor = pair.Value;
                json.WriteStartObject(pair.Key);
                json.WriteString("dtype", tensor.DType.SafetensorsName());
                json.WriteStartArray("shape");
                foreach (int dim in tensor.Shape)
                    json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + tensor.ByteCount);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += tensor.ByteCount;
            }
            json.WriteEndObject();
        }

        long headerLength = buffer.Length;
        int padding = (int)((8 - headerLength % 8) % 8);
        byte[] prefix = new byte[8 + headerLength + padding];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)(headerLength + padding));
        buffer.GetBuffer().AsSpan(0, (int)headerLength).CopyTo(prefix.AsSpan(8));
        prefix.AsSpan(8 + (int)headerLength).Fill((byte)' ');
        return (list, prefix);
    }

    /// <summary>Writes a prepared file to a stream.</summary>
    public static void Write(Stream stream, List<KeyValuePair<string, Tensor>> tensors, byte[] prefix)
    {
        stream.Write(prefix);
        foreach (KeyValuePair<string, Tensor> pair in tensors)
        {
            TensorByteChunks.Visit(
                pair.Value,
                chunk =>
                {
                    stream.Write(chunk);
                    return chunk.Length;
                }
            );
        }
    }

    /// <summary>
    /// Writes a prepared file to <paramref name="path"/> atomically: into a temporary file in the same folder
    /// (so the final rename stays on one file system), flushed to disk, then renamed over the target. A failure
    /// removes the temporary file and leaves any existing file at <paramref name="path"/> untouched.
    /// </summary>
    public static void WriteFile(string path, List<KeyValuePair<string, Tensor>> tensors, byte[] prefix)
    {
        string fullPath = Path.GetFullPath(path);
        string directory =
            Path.GetDirectoryName(fullPath) ?? throw new ArgumentException($"'{path}' names no file", nameof(path));
        string temporary = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (
                var file = new FileStream(
                    temporary,
                    FileMode.CreateNew,
                    FileAccess.Write,
                    FileShare.None,
                    bufferSize: 1 << 16
                )
            )
            {
                Write(file, tensors, prefix);
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, fullPath, overwrite: true);
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // The original failure matters more than a leftover temporary file; it is hidden (dot-prefixed).
        }
        catch (UnauthorizedAccessException)
        {
            // Same: never mask the write's own exception.
        }
    }
}
