using System.Buffers.Binary;
using System.Text.Json;

namespace MoeSharp.Tests.Layer;

/// <summary>
/// A tiny test-only safetensors reader (F32 and I64) for the golden files, kept in this one file so the
/// project's reader can replace it later: 8-byte LE header length, JSON header, raw LE data.
/// </summary>
internal sealed class GoldenSafetensors
{
    private readonly Dictionary<string, (string DType, int[] Shape, byte[] Bytes)> _tensors = new();

    private GoldenSafetensors(string path)
    {
        Path = path;
        byte[] file = File.ReadAllBytes(path);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(file);
        using JsonDocument doc = JsonDocument.Parse(file.AsMemory(8, (int)headerLength));
        int dataStart = 8 + (int)headerLength;
        foreach (JsonProperty prop in doc.RootElement.EnumerateObject())
        {
            if (prop.Name == "__metadata__")
            {
                foreach (JsonProperty m in prop.Value.EnumerateObject()) Metadata[m.Name] = m.Value.GetString() ?? "";
                continue;
            }
            string dtype = prop.Value.GetProperty("dtype").GetString()!;
            int[] shape = prop.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            long[] offsets = prop.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            _tensors[prop.Name] = (dtype, shape, file.AsSpan(dataStart + (int)offsets[0], (int)(offsets[1] - offsets[0])).ToArray());
        }
    }

    /// <summary>The file read.</summary>
    public string Path { get; }

    /// <summary>The <c>__metadata__</c> map.</summary>
    public Dictionary<string, string> Metadata { get; } = new();

    /// <summary>Reads a file.</summary>
    public static GoldenSafetensors Read(string path) => new(path);

    /// <summary>Whether a tensor is present.</summary>
    public bool Has(string name) => _tensors.ContainsKey(name);

    /// <summary>Shape of a tensor.</summary>
    public int[] Shape(string name) => _tensors[name].Shape;

    /// <summary>An F32 tensor's values.</summary>
    public float[] F32(string name)
    {
        var (dtype, _, bytes) = _tensors[name];
        Assert.Equal("F32", dtype);
        var result = new float[bytes.Length / 4];
        for (int i = 0; i < result.Length; i++) result[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4));
        return result;
    }

    /// <summary>An I64 tensor's values.</summary>
    public long[] I64(string name)
    {
        var (dtype, _, bytes) = _tensors[name];
        Assert.Equal("I64", dtype);
        var result = new long[bytes.Length / 8];
        for (int i = 0; i < result.Length; i++) result[i] = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(i * 8));
        return result;
    }

    /// <summary>
    /// The golden folder: <c>MOESHARP_GOLDEN</c> if set, else the first <c>shared/golden</c> found walking up
    /// from the test assembly.
    /// </summary>
    public static string FindGoldenDirectory()
    {
        string? env = Environment.GetEnvironmentVariable("MOESHARP_GOLDEN");
        if (!string.IsNullOrEmpty(env)) return env;
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = System.IO.Path.Combine(dir.FullName, "shared", "golden");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"no shared/golden above {AppContext.BaseDirectory}; set MOESHARP_GOLDEN");
    }
}
