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
}
