using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace MoeSharp.Tensors;

/// <summary>
/// A safetensors file read lazily: <see cref="Open"/> reads the 8-byte length and the JSON header only; each
/// <see cref="ReadFloat32"/> then reads just the requested elements of one tensor by positioned reads
/// (<see cref="RandomAccess"/>), widening F32, BF16, F16 or F8_E4M3 to float32 through a small bounce buffer.
/// Tensors nobody asks for are never read, whatever their dtype: the header only has to describe them consistently.
/// </summary>
/// <remarks>
/// Unlike <see cref="SafetensorsFile.Read"/>, which loads and validates a whole file strictly, this reader checks
/// each entry on its own (dtype size × shape equals its byte range, which lies inside the file), so that a
/// checkpoint of hundreds of gigabytes costs only its header and the bytes a rank needs.
/// Thread-safe: reads are positioned, and <see cref="BytesRead"/> is updated atomically.
/// </remarks>
public sealed class LazySafetensorsFile : IDisposable
{
    /// <summary>
    /// Bounce buffer per read call: small next to any layer, large enough that syscalls do not dominate.
    /// </summary>
    private const int BounceBytes = 256 * 1024;

    private readonly SafeFileHandle _handle;
    private readonly Dictionary<string, SafetensorsTensorInfo> _tensors;
    private long _bytesRead;

    private LazySafetensorsFile(
        string path,
        SafeFileHandle handle,
        Dictionary<string, SafetensorsTensorInfo> tensors,
        IReadOnlyDictionary<string, string> metadata,
        long headerBytes
    )
    {
        Path = path;
        _handle = handle;
        _tensors = tensors;
        Metadata = metadata;
        _bytesRead = headerBytes;
    }

    /// <summary>The file.</summary>
    public string Path { get; }

    /// <summary>Every tensor the header lists, by name.</summary>
    public IReadOnlyDictionary<string, SafetensorsTensorInfo> Tensors => _tensors;

    /// <summary>The <c>__metadata__</c> map; empty when the header has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Bytes read from the file so far, the header included.</summary>
    public long BytesRead => Interlocked.Read(ref _bytesRead);

    /// <summary>Opens a file and reads its header.</summary>
    /// <exception cref="InvalidDataException">The header is malformed; the message names the file and the
    /// tensor.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static LazySafetensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        SafeFileHandle handle = File.OpenHandle(
            path,
            FileMode.Open,
            FileAccess.Read,
            FileShare.Read,
            FileOptions.RandomAccess
        );
        try
        {
            long fileLength = RandomAccess.GetLength(handle);
            Span<byte> prefix = stackalloc byte[8];
            int got = ReadFully(handle, prefix, 0);
            if (got < 8)
            {
                throw SafetensorsFormatError.Create(
                    path,
                    null,
                    $"file is {got} bytes, shorter than the 8-byte header length"
                );
            }
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (length > SafetensorsHeader.MaxHeaderBytes || (long)length > fileLength - 8)
            {
                throw SafetensorsFormatError.Create(
                    path,
                    null,
                    $"header length {length} is over the {SafetensorsHeader.MaxHeaderBytes}-byte limit or beyond the file's {fileLength} bytes"
                );
            }
            byte[] json = new byte[length];
            if (ReadFully(handle, json, 8) < json.Length)
            {
                throw SafetensorsFormatError.Create(path, null, $"file ends inside its {length}-byte header");
            }
            long dataStart = 8 + (long)length;
            var (tensors, metadata) = ParseHeader(json, path, dataStart, fileLength - dataStart);
            return new LazySafetensorsFile(path, handle, tensors, metadata, dataStart);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Reads <c>destination.Length</c> elements of tensor <paramref name="name"/> from element
    /// <paramref name="firstElement"/> on (row-major order), widened to float32.
    /// </summary>
    /// <exception cref="KeyNotFoundException">The file has no such tensor.</exception>
    /// <exception cref="InvalidDataException">The tensor's dtype cannot be widened, or the file ends early.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The range goes past the tensor's end.</exception>
    public void ReadFloat32(string name, long firstElement, Span<float> destination)
    {
        SafetensorsTensorInfo info = _tensors.TryGetValue(name, out var found)
            ? found
            : throw new KeyNotFoundException($"{Path}: no tensor '{name}'");
        StoredElementType type = info.ElementType;
        if (type == StoredElementType.Other)
        {
            throw SafetensorsFormatError.Create(
                Path,
                name,
                $"dtype {info.DTypeName} cannot be read as float (MoeSharp reads F32, BF16, F16, F8_E4M3)"
            );
        }
        // Compared without adding: firstElement + destination.Length wraps for firstElement near long.MaxValue.
        if (firstElement < 0 || firstElement > info.ElementCount - destination.Length)
        {
            throw new ArgumentOutOfRangeException(
                nameof(firstElement),
                firstElement,
                $"{destination.Length} elements from element {firstElement} go past tensor '{name}' {info.ShapeText}"
            );
        }
        int size = type.SizeOf();
        byte[] bounce = ArrayPool<byte>.Shared.Rent(Math.Min(BounceBytes, Math.Max(size, destination.Length * size)));
        try
        {
            int perChunk = bounce.Length / size;
            long offset = info.FileOffset + firstElement * size;
            for (int done = 0; done < destination.Length; )
            {
                int count = Math.Min(perChunk, destination.Length - done);
                Span<byte> chunk = bounce.AsSpan(0, count * size);
                int got = ReadFully(_handle, chunk, offset);
                Interlocked.Add(ref _bytesRead, got);
                if (got < chunk.Length)
                {
                    throw SafetensorsFormatError.Create(
                        Path,
                        name,
                        $"the file ends at byte {offset + got}, inside the tensor"
                    );
                }
                StoredElementTypes.ToFloat32(type, chunk, destination.Slice(done, count));
                done += count;
                offset += chunk.Length;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bounce);
        }
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _handle.Dispose();

    private static int ReadFully(SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int got = RandomAccess.Read(handle, buffer[total..], offset + total);
            if (got == 0)
                break;
            total += got;
        }
        return total;
    }

    private static (Dictionary<string, SafetensorsTensorInfo>, IReadOnlyDictionary<string, string>) ParseHeader(
        byte[] json,
        string path,
        long dataStart,
        long dataLength
    )
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw SafetensorsFormatError.Create(path, null, $"header is not valid JSON: {e.Message}");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw SafetensorsFormatError.Create(path, null, "header is not a JSON object");
            }
            var tensors = new Dictionary<string, SafetensorsTensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                if (property.Name == SafetensorsHeader.MetadataKey)
                {
                    if (property.Value.ValueKind != JsonValueKind.Object)
                        continue;
                    foreach (JsonProperty item in property.Value.EnumerateObject())
                    {
                        if (item.Value.ValueKind == JsonValueKind.String)
                            metadata[item.Name] = item.Value.GetString()!;
                    }
                    continue;
                }
                SafetensorsTensorInfo info = ParseEntry(property, path, dataStart, dataLength);
                if (!tensors.TryAdd(info.Name, info))
                {
                    throw SafetensorsFormatError.Create(path, info.Name, "header lists the tensor twice");
                }
            }
            return (tensors, metadata);
        }
    }

    private static SafetensorsTensorInfo ParseEntry(JsonProperty property, string path, long dataStart, long dataLength)
    {
        string name = property.Name;
        JsonElement entry = property.Value;
        if (
            entry.ValueKind != JsonValueKind.Object
            || !entry.TryGetProperty("dtype", out JsonElement dtype)
            || dtype.ValueKind != JsonValueKind.String
            || !entry.TryGetProperty("shape", out JsonElement shapeElement)
            || shapeElement.ValueKind != JsonValueKind.Array
            || !entry.TryGetProperty("data_offsets", out JsonElement offsets)
            || offsets.ValueKind != JsonValueKind.Array
            || offsets.GetArrayLength() != 2
        )
        {
            throw SafetensorsFormatError.Create(
                path,
                name,
                "entry needs a string 'dtype', an array 'shape' and two 'data_offsets'"
            );
        }
        var shape = new long[shapeElement.GetArrayLength()];
        int d = 0;
        foreach (JsonElement dim in shapeElement.EnumerateArray())
        {
            if (!dim.TryGetInt64(out long size) || size < 0)
            {
                throw SafetensorsFormatError.Create(
                    path,
                    name,
                    $"shape[{d}] is {dim.GetRawText()}, not a non-negative integer"
                );
            }
            shape[d++] = size;
        }
        if (
            !offsets[0].TryGetInt64(out long begin)
            || !offsets[1].TryGetInt64(out long end)
            || begin < 0
            || end < begin
        )
        {
            throw SafetensorsFormatError.Create(
                path,
                name,
                $"data_offsets {offsets.GetRawText()} are not 0 <= begin <= end"
            );
        }
        if (end > dataLength)
        {
            throw SafetensorsFormatError.Create(
                path,
                name,
                $"data_offsets [{begin}, {end}] go beyond the data block, which has {dataLength} bytes"
            );
        }
        string dtypeName = dtype.GetString()!;
        // A dtype MoeSharp does not know has no size to check the byte range against; its elements must still count.
        int size1 = StoredElementTypes.SizeOf(dtypeName);
        long bytes = DeclaredBytes(shape, Math.Max(size1, 1), dtypeName, shapeElement.GetRawText(), path, name);
        if (size1 > 0 && end - begin != bytes)
        {
            throw SafetensorsFormatError.Create(
                path,
                name,
                $"data_offsets [{begin}, {end}] span {end - begin} bytes but {dtypeName} {shapeElement.GetRawText()} needs {bytes}"
            );
        }
        return new SafetensorsTensorInfo(name, dtypeName, shape, dataStart + begin, end - begin);
    }

    /// <summary>
    /// Elements × <paramref name="elementBytes"/> of <paramref name="shape"/>, refused as a format error when it passes
    /// <see cref="long.MaxValue"/> (the message gives the element limit that follows). A wrapped product would let a
    /// tensor claim elements it has no bytes for: F32 [2^62] is 2^64 bytes, 0 as a long, so it matched data_offsets
    /// [0, 0], and reading it returned the next tensor's bytes.
    /// </summary>
    private static long DeclaredBytes(
        long[] shape,
        int elementBytes,
        string dtypeName,
        string shapeText,
        string path,
        string name
    )
    {
        // A zero dimension makes the tensor empty whatever the others are.
        if (shape.Contains(0))
            return 0;
        long bytes = elementBytes;
        foreach (long size in shape)
        {
            if (bytes > long.MaxValue / size)
            {
                throw SafetensorsFormatError.Create(
                    path,
                    name,
                    $"{dtypeName} {shapeText} has more than {long.MaxValue / elementBytes} elements, more than a file can hold"
                );
            }
            bytes *= size;
        }
        return bytes;
    }
}
