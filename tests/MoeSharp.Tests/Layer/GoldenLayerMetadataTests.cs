using MoeSharp.Tensors;
using MoeSharp.Testing;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Layer;

/// <summary>
/// A <c>moe_layer</c> golden file's metadata is checked against its tensors' shapes before a layer is built from it:
/// a small file that claims a large layer is refused by name, without allocating that layer.
/// </summary>
public class GoldenLayerMetadataTests
{
    [Fact]
    public void AFileWithoutTheWeightsItsMetadataClaims_IsRefusedBeforeTheLayerIsAllocated()
    {
        // 8 KB of tokens whose metadata describes a 768 MB layer (E 64, D = H = 1024) and holds none of its weights.
        var metadata = Metadata(GoldenFiles.PathOf("layer_softmax_k2.safetensors"));
        metadata["dim"] = metadata["hidden"] = "1024";
        metadata["experts"] = "64";
        metadata["tokens"] = "1";
        SafetensorsContent file = Reopen(
            [new("x", Tensor.Zeros(DType.Float32, 1, 1024)), new("grad_out", Tensor.Zeros(DType.Float32, 1, 1024))],
            metadata,
            "claims-a-large-layer.safetensors"
        );
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var ex = Assert.Throws<InvalidDataException>(() => GoldenLayerReplay.Replay(file));
        long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
        Assert.Equal("claims-a-large-layer.safetensors: tensor 'router.gate.weight' is missing", ex.Message);
        Assert.True(allocated < 100_000_000, $"{allocated} bytes allocated before the refusal");
    }

    [Fact]
    public void MetadataThatDisagreesWithAWeightsShape_NamesTheTensorAndBothShapes()
    {
        string path = GoldenFiles.PathOf("layer_softmax_k2.safetensors"); // D 32, H 48, E 8
        SafetensorsContent golden = SafetensorsFile.Read(path);
        var metadata = Metadata(path);
        metadata["hidden"] = "4096";
        SafetensorsContent file = Reopen(golden, metadata, "hidden-4096.safetensors");
        var ex = Assert.Throws<InvalidDataException>(() => GoldenLayerReplay.ReadArgs(file));
        Assert.Equal(
            "hidden-4096.safetensors: tensor 'experts.w1' is Float32 [8, 48, 32], "
                + "expected Float32 [8, 4096, 32] (from the metadata)",
            ex.Message
        );
    }

    [Fact]
    public void MetadataTokensThatDisagreeWithX_AreRefused()
    {
        string path = GoldenFiles.PathOf("layer_softmax_k2.safetensors"); // 16 tokens
        var metadata = Metadata(path);
        metadata["tokens"] = "17";
        SafetensorsContent file = Reopen(SafetensorsFile.Read(path), metadata, "tokens-17.safetensors");
        var ex = Assert.Throws<InvalidDataException>(() => GoldenLayerReplay.ReadArgs(file));
        Assert.Equal("tokens-17.safetensors: metadata tokens = '17' but x has 16 rows", ex.Message);
    }

    [Theory]
    [InlineData("grad.x", "tensor 'grad.x' is Float32 [16, 31], expected Float32 [16, 32] (the shape of 'x')")]
    [InlineData("grad.experts.w2", "tensor 'grad.experts.w2' is Float32 [16, 31], expected Float32 [8, 32, 48]")]
    [InlineData("grad.shared.w1", "tensor 'grad.shared.w1' is the gradient of 'shared.w1', which the file does not")]
    public void AGradientOfTheWrongShape_OrOfNoInput_IsAMalformedFile(string tensor, string expected)
    {
        string path = GoldenFiles.PathOf("layer_softmax_k2.safetensors"); // D 32, H 48, E 8, no shared expert
        SafetensorsContent golden = SafetensorsFile.Read(path);
        var tensors = golden.Names.Where(n => n != tensor).Select(n => KeyValuePair.Create(n, golden.Get(n))).ToList();
        tensors.Add(new(tensor, Tensor.Zeros(DType.Float32, 16, 31)));
        SafetensorsContent file = Reopen(tensors, Metadata(path), "bad-grad.safetensors");
        var ex = Assert.Throws<InvalidDataException>(() => GoldenLayerReplay.ReadArgs(file));
        Assert.StartsWith("bad-grad.safetensors: " + expected, ex.Message);
    }

    [Theory]
    [InlineData("route_scale", "abc", "metadata route_scale = 'abc' is not a finite number")]
    [InlineData("route_scale", "1,5", "metadata route_scale = '1,5' is not a finite number")]
    [InlineData("route_scale", "NaN", "metadata route_scale = 'NaN' is not a finite number")]
    [InlineData("route_scale", "1e39", "metadata route_scale = '1e39' is not a finite number")]
    [InlineData("dim", "-1", "metadata dim = -1 must be at least 1")]
    [InlineData("hidden", "0", "metadata hidden = 0 must be at least 1")]
    [InlineData("experts", "0", "metadata experts = 0 must be at least 1")]
    [InlineData("top_k", "9", "metadata top_k = 9 must be in [1, experts = 8]")]
    [InlineData(
        "num_expert_groups",
        "3",
        "metadata num_expert_groups = 3 must divide experts = 8 into groups of at least two"
    )]
    [InlineData("num_limited_groups", "1", "metadata num_limited_groups = 1 needs num_expert_groups > 0")]
    public void AnOutOfRangeOrMalformedEntry_IsRefusedNamingTheFileTheKeyAndTheValue(
        string key,
        string value,
        string message
    )
    {
        string path = GoldenFiles.PathOf("layer_softmax_k2.safetensors"); // D 32, H 48, E 8, K 2, no groups
        var metadata = Metadata(path);
        metadata[key] = value;
        SafetensorsContent file = Reopen(SafetensorsFile.Read(path), metadata, "bad.safetensors");
        var ex = Assert.Throws<InvalidDataException>(() => GoldenLayerReplay.ReadArgs(file));
        Assert.Equal("bad.safetensors: " + message, ex.Message);
    }

    [Fact]
    public void EveryGoldenLayerFile_PassesTheCheck()
    {
        foreach (string path in GoldenFiles.SafetensorsFiles())
        {
            SafetensorsContent file = SafetensorsFile.Read(path);
            if (GoldenLayerReplay.Applies(file))
                _ = GoldenLayerReplay.ReadArgs(file);
        }
    }

    private static Dictionary<string, string> Metadata(string path) => new(SafetensorsFile.Read(path).Metadata);

    /// <summary>The tensors written with <paramref name="metadata"/> and read back, as a golden file is.</summary>
    private static SafetensorsContent Reopen(
        IEnumerable<KeyValuePair<string, Tensor>> tensors,
        Dictionary<string, string> metadata,
        string name
    )
    {
        using var stream = new MemoryStream();
        SafetensorsFile.WriteTo(stream, tensors, metadata);
        return SafetensorsFile.ReadFrom(stream.ToArray(), name);
    }
}
