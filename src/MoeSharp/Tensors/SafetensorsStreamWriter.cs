using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace MoeSharp.Tensors;

/// <summary>
/// Writes a safetensors file whose tensors are declared up front (name, dtype, 64-bit shape) and whose data
/// arrives in pieces, in any order, by positioned writes: no tensor is ever held whole in memory, so a tensor may be
/// larger than any array (an [E, H, D] expert stack of 3.8e9 elements). The header is written first; the file goes
/// to a temporary name in the same folder and is renamed over the target by <see cref="Commit"/> only once every
/// byte of every tensor has been written. Disposing without committing deletes the temporary file.
/// </summary>
public sealed class SafetensorsStreamWriter : IDisposable
{
    private static readonly JsonWriterOptions JsonOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly string _path;
    private readonly string? _temporary; // null: the caller's file, written in place and neither renamed nor closed
    private readonly SafeFileHandle _handle;
    private readonly Dictionary<string, (long Offset, long Elements, DType DType)> _tensors = new(
        StringComparer.Ordinal
    );
    private readonly Dictionary<string, long> _written = new(StringComparer.Ordinal);
    private bool _committed;

    /// <summary>Declares the tensors and writes the header.</summary>
    /// <param name="path">The file to write (replaced atomically by <see cref="Commit"/>).</param>
    /// <param name="tensors">Name, dtype (F32 or BF16) and shape of each tensor, in file order.</param>
    /// <param name="metadata">The <c>__metadata__</c> map, or null.</param>
    /// <exception cref="ArgumentException">A name repeats or is reserved, a dimension is negative, a dtype is not
    /// float, or the tensors end past byte <see cref="long.MaxValue"/>.</exception>
    public SafetensorsStreamWriter(
        string path,
        IEnumerable<(string Name, DType DType, long[] Shape)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null
    )
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        byte[] prefix = BuildPrefix(tensors, metadata, _tensors);
        _path = Path.GetFullPath(path);
        string directory =
            Path.GetDirectoryName(_path) ?? throw new ArgumentException($"'{path}' names no file", nameof(path));
        _temporary = Path.Combine(directory, $".{Path.GetFileName(_path)}.{Guid.NewGuid():N}.tmp");
        _handle = File.OpenHandle(_temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, FileOptions.None);
        Start(prefix);
    }

    private SafetensorsStreamWriter(
        FileStream file,
        IEnumerable<(string Name, DType DType, long[] Shape)> tensors,
        IReadOnlyDictionary<string, string>? metadata
    )
    {
        byte[] prefix = BuildPrefix(tensors, metadata, _tensors);
        _path = file.Name;
        _handle = file.SafeFileHandle;
        Start(prefix);
    }

    /// <summary>
    /// A writer into <paramref name="file"/> (empty, opened for writing) that the caller owns: <see cref="Commit"/>
    /// checks every tensor was written in full, and the caller flushes, renames and closes the file (a set of files
    /// replaced together).
    /// </summary>
    internal static SafetensorsStreamWriter Over(
        FileStream file,
        IEnumerable<(string Name, DType DType, long[] Shape)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null
    )
    {
        ArgumentNullException.ThrowIfNull(file);
        ArgumentNullException.ThrowIfNull(tensors);
        return new SafetensorsStreamWriter(file, tensors, metadata);
    }

    /// <summary>Writes the header and sizes the file to hold every tensor.</summary>
    private void Start(byte[] prefix)
    {
        try
        {
            RandomAccess.Write(_handle, prefix, 0);
            long end = prefix.Length + _tensors.Values.Sum(t => t.Elements * t.DType.SizeOf());
            RandomAccess.SetLength(_handle, end);
            foreach (string name in _tensors.Keys.ToList())
            {
                _tensors[name] = _tensors[name] with { Offset = _tensors[name].Offset + prefix.Length };
                _written[name] = 0;
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes float32 values into tensor <paramref name="name"/> from element <paramref name="firstElement"/> on
    /// (converted to the tensor's dtype).
    /// </summary>
    /// <exception cref="ArgumentException">No such tensor.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="firstElement"/> is negative, or the range goes
    /// past the tensor's end.</exception>
    public void Write(string name, long firstElement, ReadOnlySpan<float> values)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!_tensors.TryGetValue(name, out var tensor))
            throw new ArgumentException($"no tensor '{name}' was declared", nameof(name));
        // Compared without adding: firstElement + values.Length wraps for firstElement near long.MaxValue, and the
        // write then lands before the tensor, in the one declared ahead of it.
        if (firstElement < 0 || firstElement > tensor.Elements - values.Length)
        {
            throw new ArgumentOutOfRangeException(
                nameof(firstElement),
                firstElement,
                $"{values.Length} elements from element {firstElement} go past tensor '{name}' ({tensor.Elements} elements)"
            );
        }
        int size = tensor.DType.SizeOf();
        long offset = tensor.Offset + firstElement * size;
        if (tensor.DType == DType.Float32)
        {
            RandomAccess.Write(_handle, MemoryMarshal.AsBytes(values), offset);
        }
        else
        {
            var narrow = new BFloat16[Math.Min(values.Length, 1 << 16)];
            for (int done = 0; done < values.Length; done += narrow.Length)
            {
                int count = Math.Min(narrow.Length, values.Length - done);
                for (int i = 0; i < count; i++)
                    narrow[i] = BFloat16.FromSingle(values[done + i]);
                RandomAccess.Write(_handle, MemoryMarshal.AsBytes(narrow.AsSpan(0, count)), offset + (long)done * size);
            }
        }
        _written[name] += values.Length;
    }

    /// <summary>Flushes the file to disk and renames it over the target.</summary>
    /// <exception cref="InvalidOperationException">A tensor has not been written in full (counting written
    /// elements).</exception>
    public void Commit()
    {
        foreach (var (name, tensor) in _tensors)
        {
            if (_written[name] != tensor.Elements)
            {
                throw new InvalidOperationException(
                    $"{_path}: tensor '{name}' got {_written[name]} of its {tensor.Elements} elements"
                );
            }
        }
        if (_temporary is null)
        {
            // The caller's file: the caller flushes it, after the rest of its set (a collective save must not keep
            // the other ranks waiting on this rank's fsync between two of its gathers).
            _committed = true;
            return;
        }
        RandomAccess.FlushToDisk(_handle);
        _handle.Dispose();
        File.Move(_temporary, _path, overwrite: true);
        _committed = true; // only now: a rename that fails leaves the temporary file for Dispose to delete
    }

    /// <summary>
    /// Closes the file; without <see cref="Commit"/> the temporary file is deleted and the target left as it was.
    /// </summary>
    public void Dispose()
    {
        if (_temporary is null)
            return; // the caller's file: the caller closes it, and removes it when the set is abandoned
        _handle?.Dispose();
        if (_committed)
            return;
        try
        {
            File.Delete(_temporary);
        }
        catch (IOException)
        {
            // The failure that got us here matters more than a hidden leftover temporary file.
        }
    }

    private static byte[] BuildPrefix(
        IEnumerable<(string Name, DType DType, long[] Shape)> tensors,
        IReadOnlyDictionary<string, string>? metadata,
        Dictionary<string, (long Offset, long Elements, DType DType)> layout
    )
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, JsonOptions))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(SafetensorsHeader.MetadataKey);
                foreach (var (key, value) in metadata)
                    json.WriteString(
                        key,
                        value ?? throw new ArgumentException($"metadata value for '{key}' is null", nameof(metadata))
                    );
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, dtype, shape) in tensors)
            {
                if (name is null || name == SafetensorsHeader.MetadataKey)
                    throw new ArgumentException($"tensor name '{name}' is null or reserved", nameof(tensors));
                if (dtype is not (DType.Float32 or DType.BFloat16))
                    throw new ArgumentException($"tensor '{name}': {dtype} is not F32 or BF16", nameof(tensors));
                if (shape.Any(d => d < 0))
                    throw new ArgumentException($"tensor '{name}' has a negative dimension", nameof(tensors));
                long bytes =
                    ByteLength(dtype, shape) is long fits && fits <= long.MaxValue - offset
                        ? fits
                        : throw new ArgumentException(
                            $"tensor '{name}' {dtype.SafetensorsName()} [{string.Join(", ", shape)}] ends past byte {long.MaxValue}, "
                                + "more than a file can hold",
                            nameof(tensors)
                        );
                if (!layout.TryAdd(name, (offset, bytes / dtype.SizeOf(), dtype)))
                    throw new ArgumentException($"tensor name '{name}' appears twice", nameof(tensors));
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype.SafetensorsName());
                json.WriteStartArray("shape");
                foreach (long dim in shape)
                    json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        long headerLength = buffer.Length;
        int padding = (int)((8 - headerLength % 8) % 8);
        byte[] prefix = new byte[8 + headerLength + padding];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)(headerLength + padding));
        buffer.GetBuffer().AsSpan(0, (int)headerLength).CopyTo(prefix.AsSpan(8));
        prefix.AsSpan(8 + (int)headerLength).Fill((byte)' ');
        return prefix;
    }

    /// <summary>
    /// The bytes of a <paramref name="dtype"/> tensor of <paramref name="shape"/>, or null when they pass
    /// <see cref="long.MaxValue"/>: unchecked, F32 [2^62] came to 0 bytes, a header entry claiming 2^62 elements with
    /// no bytes behind them.
    /// </summary>
    private static long? ByteLength(DType dtype, long[] shape)
    {
        // A zero dimension makes the tensor empty whatever the others are.
        if (shape.Contains(0))
            return 0;
        long bytes = dtype.SizeOf();
        foreach (long size in shape)
        {
            if (bytes > long.MaxValue / size)
                return null;
            bytes *= size;
        }
        return bytes;
    }
}
