using System.Text;
using System.Text.Json;

namespace MoeSharp.Tensors;

/// <summary>
/// The parsed and validated JSON header of a safetensors file: tensor entries in data-block order and the
/// <c>__metadata__</c> map. Validation follows the reference implementation (huggingface/safetensors): every
/// entry must be well-typed and its byte range must match its dtype and shape, and the entries must tile the
/// data block exactly — no overlaps, no holes, no trailing bytes.
/// </summary>
internal sealed class SafetensorsHeader
{
    /// <summary>
    /// The reference implementation's limit on the header length; a longer one is a corrupt length field.
    /// </summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>The header key that holds the string-to-string metadata instead of a tensor.</summary>
    public const string MetadataKey = "__metadata__";

    private const string SupportedDTypes = "F32, BF16, I32 and I64";

    private SafetensorsHeader(IReadOnlyList<SafetensorsEntry> entries, IReadOnlyDictionary<string, string> metadata)
    {
        Entries = entries;
        Metadata = metadata;
        DataLength = entries.Count == 0 ? 0 : entries[^1].End;
    }

    /// <summary>Entries sorted by data offset (header order among equal offsets, i.e. empty tensors).</summary>
    public IReadOnlyList<SafetensorsEntry> Entries { get; }

    /// <summary>The <c>__metadata__</c> map; empty when the header has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Bytes the data block must have: the end of the last tensor.</summary>
    public long DataLength { get; }

    /// <summary>Parses and validates a header.</summary>
    /// <param name="json">The header bytes (UTF-8 JSON, possibly padded with trailing spaces).</param>
    /// <param name="sourceName">File name for messages.</param>
    /// <param name="availableDataLength">Bytes after the header when known (a file or buffer), null for a stream of
    /// unknown length.</param>
    /// <exception cref="InvalidDataException">The header is malformed.</exception>
    public static SafetensorsHeader Parse(ReadOnlySpan<byte> json, string sourceName, long? availableDataLength)
    {
        CheckUtf8(json, sourceName);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray());
        }
        catch (JsonException e)
        {
            throw SafetensorsFormatError.Create(sourceName, null, $"header is not valid JSON: {e.Message}");
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw SafetensorsFormatError.Create(sourceName, null, $"header is a JSON {Kind(root)}, not an object");
            }

            var entries = new List<SafetensorsEntry>();
            IReadOnlyDictionary<string, string> metadata = new Dictionary<string, string>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty property in root.EnumerateObject())
            {
                // JSON parsers disagree on which duplicate wins, so a duplicate key is ambiguous: reject it.
                if (!seen.Add(property.Name))
                {
                    throw SafetensorsFormatError.Create(
                        sourceName,
                        property.Name == MetadataKey ? null : property.Name,
                        $"header has the key '{property.Name}' twice"
                    );
                }
                if (property.Name == MetadataKey)
                {
                    metadata = ParseMetadata(property.Value, sourceName);
                }
                else
                {
                    entries.Add(ParseEntry(property.Name, property.Value, sourceName));
                }
            }

            // A stable sort: empty tensors sharing an offset keep their header order.
            List<SafetensorsEntry> ordered = entries
                .Select((entry, index) => (entry, index))
                .OrderBy(p => p.entry.Begin)
                .ThenBy(p => p.entry.End)
                .ThenBy(p => p.index)
                .Select(p => p.entry)
                .ToList();
            CheckLayout(ordered, sourceName, availableDataLength);
            return new SafetensorsHeader(ordered, metadata);
        }
    }

    private static void CheckUtf8(ReadOnlySpan<byte> json, string sourceName)
    {
        if (System.Text.Unicode.Utf8.IsValid(json))
            return;
        int offset = 0;
        while (offset < json.Length)
        {
            if (Rune.DecodeFromUtf8(json[offset..], out _, out int consumed) != System.Buffers.OperationStatus.Done)
                break;
            offset += consumed;
        }
        throw SafetensorsFormatError.Create(
            sourceName,
            null,
            $"header is not valid UTF-8: bad byte 0x{json[offset]:X2} at header offset {offset}"
        );
    }

    private static Dictionary<string, string> ParseMetadata(JsonElement value, string sourceName)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        // The reference reads __metadata__ as Option<map>, so an explicit null means "no metadata".
        if (value.ValueKind == JsonValueKind.Null)
            return metadata;
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw SafetensorsFormatError.Create(
                sourceName,
                null,
                $"'{MetadataKey}' is a JSON {Kind(value)}, not an object of strings"
            );
        }
        foreach (JsonProperty item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw SafetensorsFormatError.Create(
                    sourceName,
                    null,
                    $"'{MetadataKey}' value for key '{item.Name}' is a JSON {Kind(item.Value)} ({Raw(item.Value)}), not a string"
                );
            }
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
            {
                throw SafetensorsFormatError.Create(
                    sourceName,
                    null,
                    $"'{MetadataKey}' has the key '{item.Name}' twice"
                );
            }
        }
        return metadata;
    }

    private static SafetensorsEntry ParseEntry(string name, JsonElement value, string sourceName)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw SafetensorsFormatError.Create(
                sourceName,
                name,
                $"entry is a JSON {Kind(value)} ({Raw(value)}), not an object"
            );
        }

        JsonElement dtypeElement = Required(value, "dtype", name, sourceName);
        if (dtypeElement.ValueKind != JsonValueKind.String)
        {
            throw SafetensorsFormatError.Create(
                sourceName,
                name,
                $"'dtype' is a JSON {Kind(dtypeElement)} ({Raw(dtypeElement)}), not a string"
            );
        }
        string dtypeName = dtypeElement.GetString()!;
        if (!DTypes.TryParseSafetensorsName(dtypeName, out DType dtype))
        {
            throw SafetensorsFormatError.Create(
                sourceName,
                name,
                $"dtype '{dtypeName}' is not supported (MoeSharp reads {SupportedDTypes})"
            );
        }

        JsonElement shapeElement = Required(value, "shape", name, sourceName);
        if (shapeElement.ValueKind != JsonValueKind.Array)
        {
            throw SafetensorsFormatError.Create(
                sourceName,
                name,
                $"'shape' is a JSON {Kind(shapeElement)} ({Raw(shapeElement)}), not an array"
            );
        }
        var shape = new int[shapeElement.GetArrayLength()];
        long elements = 1;
        int d = 0;
        foreach (JsonElement dim in shapeElement.EnumerateArray())
        {
            long size = Integer(dim, $"shape[{d}]", name, sourceName);
            if (size < 0)
            {
                throw SafetensorsFormatError.Create(
                    sourceName,
                    name,
                    $"shape {Raw(shapeElement)} has the negative dimension {size} at index {d}"
                );
            }
            // Tensor storage is one array, so its element count must fit Array.MaxLength; checking per step
            // also keeps the product from overflowing.
            elements *= Math.Max(size, 1);
            if (size > int.MaxValue || elements > Array.MaxLength)
            {
                throw SafetensorsFormatError.Create(
                    sourceName,
                    name,
                    $"shape {Raw(shapeElement)} has more than {Array.MaxLength} elements, more than a tensor can hold"
                );
            }
            shape[d++] = (int)size;
        }
        if (shape.Contains(0))
            elements = 0;

        JsonElement offsetsElement = Required(value, "data_offsets", name, sourceName);
        if (offsetsElement.ValueKind != JsonValueKind.Array || offsetsElement.GetArrayLength() != 2)
        {
            throw SafetensorsFormatError.Create(
                sourceName,
                name,
                $"'data_offsets' is {Raw(offsetsElement)}, not an array of two integers [begin, end]"
            );
        }
        long begin = Integer(offsetsElement[0], "data_offsets[0]", name, sourceName);
        long end = Integer(offsetsElement[1], "data_offsets[1]", name, sourceName);
        if (begin < 0 || end < 0)
        {
            throw SafetensorsFormatError.Create(
                sourceName,
                name,
                $"data_offsets [{begin}, {end}] has a negative offset"
            );
        }
        if (begin > end)
        {
            throw SafetensorsFormatError.Create(sourceName, name, $"data_offsets [{begin}, {end}] begin after end");
        }
        long expectedBytes = elements * dtype.SizeOf();
        if (end - begin != expectedBytes)
        {
            throw SafetensorsFormatError.Create(
                sourceName,
                name,
                $"data_offsets [{begin}, {end}] span {end - begin} bytes but {dtypeName} {Raw(shapeElement)} needs {expectedBytes}"
            );
        }
        return new SafetensorsEntry(name, dtype, shape, begin, end);
    }

    private static void CheckLayout(List<SafetensorsEntry> ordered, string sourceName, long? availableDataLength)
    {
        if (availableDataLength is long available)
        {
            foreach (SafetensorsEntry entry in ordered)
            {
                if (entry.End > available)
                {
                    throw SafetensorsFormatError.Create(
                        sourceName,
                        entry.Name,
                        $"data_offsets {entry.OffsetsText} go beyond the data block, which has {available} bytes"
                    );
                }
            }
        }

        long covered = 0;
        SafetensorsEntry? previous = null;
        foreach (SafetensorsEntry entry in ordered)
        {
            if (entry.Begin < covered)
            {
                throw SafetensorsFormatError.Create(
                    sourceName,
                    entry.Name,
                    $"data_offsets {entry.OffsetsText} overlap tensor '{previous!.Name}' at {previous.OffsetsText}"
                );
            }
            if (entry.Begin > covered)
            {
                throw SafetensorsFormatError.Create(
                    sourceName,
                    entry.Name,
                    $"data_offsets {entry.OffsetsText} leave a hole: data bytes [{covered}, {entry.Begin}) belong to no tensor"
                );
            }
            covered = entry.End;
            previous = entry;
        }

        if (availableDataLength is long total && covered != total)
        {
            throw SafetensorsFormatError.Create(
                sourceName,
                null,
                $"the data block has {total} bytes but the tensors cover only {covered}: bytes [{covered}, {total}) belong to no tensor"
            );
        }
    }

    private static JsonElement Required(JsonElement entry, string key, string name, string sourceName)
    {
        if (entry.TryGetProperty(key, out JsonElement value))
            return value;
        throw SafetensorsFormatError.Create(sourceName, name, $"entry has no '{key}' ({Raw(entry)})");
    }

    private static long Integer(JsonElement element, string what, string name, string sourceName)
    {
        if (element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out long value))
            return value;
        string why =
            element.ValueKind == JsonValueKind.Number
                ? "not an integer in range"
                : $"a JSON {Kind(element)}, not an integer";
        throw SafetensorsFormatError.Create(sourceName, name, $"{what} is {Raw(element)}: {why}");
    }

    private static string Kind(JsonElement element) => element.ValueKind.ToString().ToLowerInvariant();

    // Messages quote the offending JSON, shortened so a corrupt header cannot produce a megabyte-long message.
    private static string Raw(JsonElement element)
    {
        string text = element.GetRawText();
        return text.Length <= 120 ? text : string.Concat(text.AsSpan(0, 117), "...");
    }
}
