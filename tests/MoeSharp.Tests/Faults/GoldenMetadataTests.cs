using System.Diagnostics;
using MoeSharp.Tensors;
using MoeSharp.Tests.Dispatch;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Faults;

/// <summary>A dispatch golden file's metadata is checked against its tensors before any rank starts.</summary>
public class GoldenMetadataTests
{
    [Theory]
    [InlineData("world", "100000", "outside [1, 512]")]
    [InlineData("world", "8", "tensor")]
    [InlineData("tokens", "99", "metadata tokens = '99' but x.g0's rows say")]
    [InlineData("dim", "7", "metadata dim = '7'")]
    [InlineData("dtype", "bfloat16", "dtype = 'bfloat16'")]
    [InlineData("top_k", "9", "top_k = 9")]
    public void InconsistentMetadata_IsRefused_BeforeAnyRankStarts(string key, string value, string expected)
    {
        var (tensors, metadata) = NaiveGolden.Build(
            world: 4,
            sp: 2,
            tokens: 9,
            dim: 3,
            experts: 8,
            topK: 2,
            scoreBefore: false,
            seed: 3
        );
        metadata[key] = value;
        if (key == "world")
            metadata["ep"] = value;
        var file = new SafetensorsContent(
            "bad.safetensors",
            tensors.Select(p => KeyValuePair.Create(p.Key, p.Value)).ToList(),
            metadata
        );
        var clock = Stopwatch.StartNew();
        var error = Assert.Throws<InvalidDataException>(() => GoldenDispatchReplay.ReadCase(file));
        Assert.Contains(expected, error.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), clock.Elapsed.ToString());
    }

    [Theory]
    [InlineData(-1, "= -1 is outside [0, experts = 8)")]
    [InlineData(8, "= 8 is outside [0, experts = 8)")]
    [InlineData(null, "repeats expert")]
    public void InvalidIds_AreAFileError_NotAMismatch(int? id, string expected)
    {
        var (tensors, metadata) = NaiveGolden.Build(
            world: 2,
            sp: 1,
            tokens: 5,
            dim: 3,
            experts: 8,
            topK: 2,
            scoreBefore: false,
            seed: 3
        );
        Span<long> ids = tensors["ids.g1"].AsSpan<long>();
        ids[7] = id ?? ids[6]; // token 3, slot 1
        var file = new SafetensorsContent(
            "bad.safetensors",
            tensors.Select(p => KeyValuePair.Create(p.Key, p.Value)).ToList(),
            metadata
        );
        var error = Assert.Throws<InvalidDataException>(() => GoldenDispatchReplay.ReadCase(file));
        Assert.Contains("'ids.g1' [token 3", error.Message);
        Assert.Contains(expected, error.Message);
    }
}
