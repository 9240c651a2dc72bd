using System.Text.Json;
using MoeSharp.Tensors;

namespace MoeSharp.Checkpoints;

/// <summary>
/// A checkpoint directory of one or more <c>.safetensors</c> shards, read lazily. With
/// <c>model.safetensors.index.json</c> its <c>weight_map</c> says which shard holds which tensor and only the
/// shards holding requested tensors are opened (their headers read); without it every <c>*.safetensors</c> file's
/// header is read. Tensor data is read only on request (<see cref="ReadFloat32"/>).
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    /// <summary>The Hugging Face name of the shard index.</summary>
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly Dictionary<string, string>? _weightMap;
    private readonly Dictionary<string, LazySafetensorsFile> _open = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    private SafetensorsCheckpoint(string directory, Dictionary<string, string>? weightMap)
    {
        Directory = directory;
        _weightMap = weightMap;
    }

    /// <summary>The checkpoint directory.</summary>
    public string Directory { get; }

    /// <summary>Bytes read from every opened shard so far (headers included).</summary>
    public long BytesRead
    {
        get
        {
            lock (_lock)
                return _open.Values.Sum(f => f.BytesRead);
        }
    }

    /// <summary>The shards opened so far (file names).</summary>
    public IReadOnlyList<string> OpenedFiles
    {
        get
        {
            lock (_lock)
                return [.. _open.Keys.Order(StringComparer.Ordinal)];
        }
    }

    /// <summary>Opens a checkpoint directory: reads the index if there is one, else every shard's header.</summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="InvalidDataException">The index or a header is malformed, or no shard exists.</exception>
    public static SafetensorsCheckpoint Open(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (!System.IO.Directory.Exists(directory))
            throw new DirectoryNotFoundException($"checkpoint directory '{directory}' does not exist");
        string index = Path.Combine(directory, IndexFileName);
        if (File.Exists(index))
            return new SafetensorsCheckpoint(directory, ReadWeightMap(index));

        var checkpoint = new SafetensorsCheckpoint(directory, null);
        string[] shards = System.IO.Directory.GetFiles(directory, "*.safetensors");
        if (shards.Length == 0)
            throw new InvalidDataException($"{directory}: no {IndexFileName} and no .safetensors file");
        try
        {
            foreach (string shard in shards.Order(StringComparer.Ordinal))
                checkpoint.OpenShard(Path.GetFileName(shard));
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
        return checkpoint;
    }

    /// <summary>
    /// Finds a tensor (opening the shard the index names for it); false when the checkpoint has none.
    /// </summary>
    /// <exception cref="InvalidDataException">The index names a shard that lacks the tensor, or a shard is
    /// malformed.</exception>
    public bool TryGetTensor(string name, out SafetensorsTensorInfo info)
    {
        ArgumentNullException.ThrowIfNull(name);
        LazySafetensorsFile? file = FileOf(name);
        if (file is not null && file.Tensors.TryGetValue(name, out SafetensorsTensorInfo? found))
        {
            info = found;
            return true;
        }
        if (file is not null && _weightMap is not null)
        {
            throw new InvalidDataException(
                $"{Directory}: {IndexFileName} puts tensor '{name}' in {Path.GetFileName(file.Path)}, which has no such tensor"
            );
        }
        info = null!;
        return false;
    }

    /// <summary>
    /// Reads elements of a tensor widened to float32 (see <see cref="LazySafetensorsFile.ReadFloat32"/>).
    /// </summary>
    /// <exception cref="KeyNotFoundException">The checkpoint has no such tensor.</exception>
    public void ReadFloat32(string name, long firstElement, Span<float> destination)
    {
        LazySafetensorsFile file = FileOf(name) ?? throw new KeyNotFoundException($"{Directory}: no tensor '{name}'");
        file.ReadFloat32(name, firstElement, destination);
    }

    /// <summary>Closes every opened shard.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            foreach (LazySafetensorsFile file in _open.Values)
                file.Dispose();
            _open.Clear();
        }
    }

    private LazySafetensorsFile? FileOf(string name)
    {
        if (_weightMap is not null)
        {
            return _weightMap.TryGetValue(name, out string? shard) ? OpenShard(shard) : null;
        }
        lock (_lock)
        {
            return _open.Values.FirstOrDefault(f => f.Tensors.ContainsKey(name));
        }
    }

    private LazySafetensorsFile OpenShard(string shard)
    {
        lock (_lock)
        {
            if (_open.TryGetValue(shard, out LazySafetensorsFile? file))
                return file;
            string path = Path.Combine(Directory, shard);
            if (!File.Exists(path))
                throw new InvalidDataException(
                    $"{Directory}: shard '{shard}' (named by {IndexFileName}) does not exist"
                );
            file = LazySafetensorsFile.Open(path);
            if (_weightMap is null)
            {
                foreach (string name in file.Tensors.Keys)
                {
                    LazySafetensorsFile? other = _open.Values.FirstOrDefault(f => f.Tensors.ContainsKey(name));
                    if (other is not null)
                    {
                        file.Dispose();
                        throw new InvalidDataException(
                            $"{Directory}: tensor '{name}' is in both {Path.GetFileName(other.Path)} and {shard}"
                        );
                    }
                }
            }
            _open.Add(shard, file);
            return file;
        }
    }

    /// <summary>
    /// Reads the index's <c>weight_map</c> with a forward-only reader (no document tree) and one string per shard
    /// name: a large model's index lists tens of thousands of tensors, which should cost little next to one layer.
    /// </summary>
    private static Dictionary<string, string> ReadWeightMap(string index)
    {
        // 256 MiB: a large model's index (tens of thousands of tensors) is a few MB.
        byte[] bytes = BoundedFile.ReadAllBytes(index, 256 << 20, "a safetensors index");
        var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
        var shards = new Dictionary<string, string>(StringComparer.Ordinal);
        bool found = false;
        try
        {
            var reader = new Utf8JsonReader(
                bytes,
                new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip }
            );
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new InvalidDataException($"{index}: not a JSON object");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool isMap = reader.ValueTextEquals("weight_map"u8);
                reader.Read();
                if (!isMap)
                {
                    reader.Skip();
                    continue;
                }
                if (reader.TokenType != JsonTokenType.StartObject)
                    throw new InvalidDataException($"{index}: 'weight_map' is not an object");
                found = true;
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    string name = reader.GetString()!;
                    reader.Read();
                    string? shard = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                    if (
                        string.IsNullOrEmpty(shard)
                        || shard.Contains('/')
                        || shard.Contains('\\')
                        || shard.Contains("..")
                    )
                    {
                        throw new InvalidDataException(
                            $"{index}: weight_map['{name}'] is not a shard file name in the checkpoint directory"
                        );
                    }
                    if (!shards.TryGetValue(shard, out string? interned))
                        shards.Add(shard, interned = shard);
                    weightMap[name] = interned;
                }
            }
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{index}: not valid JSON: {e.Message}");
        }
        catch (InvalidOperationException e) when (e.InnerException is System.Text.DecoderFallbackException)
        {
            // The reader checks UTF-8 only when a string is read (found by fuzzing).
            throw new InvalidDataException($"{index}: a string is not valid UTF-8");
        }
        return found ? weightMap : throw new InvalidDataException($"{index}: no 'weight_map' object");
    }
}
