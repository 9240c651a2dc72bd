using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using MoeSharp.Tensors;
using MoeSharp.Testing;

namespace MoeSharp.Tests.Tensors;

/// <summary>
/// Golden files read and round-trip; writing lays files out as the reference does and never half-writes.
/// </summary>
public sealed class SafetensorsFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moesharp-st-").FullName;

    /// <inheritdoc />
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> GoldenNames() => GoldenFiles.SafetensorsFileNames();

    [Fact]
    public void GoldenFolderHasSafetensorsFiles() => Assert.NotEmpty(GoldenFiles.SafetensorsFiles());

    [Theory]
    [MemberData(nameof(GoldenNames))]
    public void GoldenFileReads(string name)
    {
        string path = GoldenFiles.PathOf(name);
        SafetensorsContent content = SafetensorsFile.Read(path);
        Assert.Equal(path, content.SourceName);
        Assert.NotEmpty(content.Names);
        Assert.NotEmpty(content.Metadata);
        foreach (var (tensorName, tensor) in content)
        {
            Assert.Contains(tensor.DType, new[] { DType.Float32, DType.Int64 });
            Assert.Same(tensor, content[tensorName]);
        }
        // The same bytes through the in-memory and stream entry points give the same tensors.
        SafetensorsContent fromBytes = SafetensorsFile.ReadFrom(File.ReadAllBytes(path), name);
        AssertSameContent(content, fromBytes);
    }

    [Theory]
    [MemberData(nameof(GoldenNames))]
    public void GoldenFileRoundTrips(string name)
    {
        SafetensorsContent original = SafetensorsFile.Read(GoldenFiles.PathOf(name));
        string copy = Path.Combine(_dir, name);
        SafetensorsFile.Write(copy, original, original.Metadata);
        AssertSameContent(original, SafetensorsFile.Read(copy));
        Assert.Equal(new[] { name }, Directory.GetFiles(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public void WriterLaysOutTheHeaderLikeTheReference()
    {
        var tensors = new KeyValuePair<string, Tensor>[]
        {
            new("b", Tensor.FromArray(new[] { 1f, 2f, 3f }, 3)),
            new("a", Tensor.FromArray(new long[] { 7 }, 1, 1)),
            new("empty", Tensor.Zeros(DType.BFloat16, 0, 4)),
            new("é<name>", Tensor.FromArray(new[] { BFloat16.FromSingle(1f) })),
        };
        var stream = new MemoryStream();
        SafetensorsFile.WriteTo(stream, tensors, new Dictionary<string, string> { ["k"] = "v" });
        byte[] bytes = stream.ToArray();

        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLength % 8);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        string expected =
            "{\"__metadata__\":{\"k\":\"v\"},"
            + "\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
            + "\"a\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[12,20]},"
            + "\"empty\":{\"dtype\":\"BF16\",\"shape\":[0,4],\"data_offsets\":[20,20]},"
            + "\"é<name>\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[20,22]}}";
        Assert.Equal(expected, header.TrimEnd(' '));
        Assert.True(header.Length - expected.Length < 8);
        Assert.Equal(8 + headerLength + 22, bytes.Length);

        SafetensorsContent back = SafetensorsFile.ReadFrom(bytes);
        Assert.Equal(new[] { "b", "a", "empty", "é<name>" }, back.Names);
        Assert.Equal("v", back.Metadata["k"]);
    }

    [Fact]
    public void NoMetadataWritesNoMetadataKey()
    {
        var stream = new MemoryStream();
        SafetensorsFile.WriteTo(stream, [new("x", Tensor.Zeros(DType.Int32, 2))], new Dictionary<string, string>());
        using JsonDocument doc = JsonDocument.Parse(
            stream.ToArray().AsMemory(8, (int)BinaryPrimitives.ReadUInt64LittleEndian(stream.ToArray()))
        );
        Assert.False(doc.RootElement.TryGetProperty("__metadata__", out _));
        Assert.Empty(SafetensorsFile.ReadFrom(stream.ToArray()).Metadata);
    }

    [Fact]
    public void WriteReplacesAnExistingFile()
    {
        string path = Path.Combine(_dir, "t.safetensors");
        File.WriteAllText(path, "old contents");
        SafetensorsFile.Write(path, [new("x", Tensor.FromArray(new[] { 5 }, 1))]);
        Assert.Equal(5, SafetensorsFile.Read(path)["x"].AsSpan<int>()[0]);
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void InvalidArgumentsWriteNothing()
    {
        string path = Path.Combine(_dir, "t.safetensors");
        File.WriteAllText(path, "keep me");
        Tensor t = Tensor.Zeros(DType.Float32, 1);
        var e = Assert.Throws<ArgumentException>(() => SafetensorsFile.Write(path, [new("x", t), new("x", t)]));
        Assert.Contains("'x' appears twice", e.Message);
        Assert.Throws<ArgumentException>(() => SafetensorsFile.Write(path, [new("__metadata__", t)]));
        Assert.Throws<ArgumentException>(() => SafetensorsFile.Write(path, [new("x", null!)]));
        Assert.Throws<ArgumentException>(() =>
            SafetensorsFile.Write(path, [new("x", t)], new Dictionary<string, string> { ["k"] = null! })
        );
        Assert.Equal("keep me", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void FailedWriteLeavesTheOldFileAndNoTemporary()
    {
        // A target that is a directory makes the final rename fail after the temporary file is complete.
        string path = Path.Combine(_dir, "occupied");
        Directory.CreateDirectory(path);
        Assert.ThrowsAny<IOException>(() => SafetensorsFile.Write(path, [new("x", Tensor.Zeros(DType.Float32, 4))]));
        Assert.Empty(Directory.GetFiles(_dir));
        Assert.True(Directory.Exists(path));
    }

    [Fact]
    public void GetNamesTheMissingTensorAndTheFile()
    {
        SafetensorsContent content = SafetensorsFile.ReadFrom(
            Write([new("alpha", Tensor.Zeros(DType.Float32, 1))]),
            "model.safetensors"
        );
        var e = Assert.Throws<KeyNotFoundException>(() => content.Get("beta"));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("'beta'", e.Message);
        Assert.Contains("'alpha'", e.Message);
        Assert.Throws<KeyNotFoundException>(() => content["beta"]);
        Assert.False(content.TryGet("beta", out _));
        Assert.True(content.TryGet("alpha", out Tensor? alpha));
        Assert.Equal(1, alpha.ElementCount);
        Assert.True(content.Contains("alpha"));
    }

    private static byte[] Write(IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var stream = new MemoryStream();
        SafetensorsFile.WriteTo(stream, tensors);
        return stream.ToArray();
    }

    internal static void AssertSameContent(SafetensorsContent expected, SafetensorsContent actual)
    {
        Assert.Equal(expected.Names, actual.Names);
        Assert.Equal(
            expected.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal),
            actual.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal)
        );
        foreach (string name in expected.Names)
        {
            Assert.True(
                expected[name].BitwiseEquals(actual[name]),
                $"tensor '{name}': {expected[name]} vs {actual[name]}"
            );
        }
    }
}
