using MoeSharp.Tensors;

namespace MoeSharp.Tests.Checkpoints;

/// <summary>
/// The small Hugging Face checkpoints checked in under <c>tests/MoeSharp.Tests/Checkpoints/data</c>, made by
/// <c>bench/reference/hf_moe_reference.py</c> with their float64 expected outputs (test support).
/// </summary>
internal static class CheckpointData
{
    /// <summary>The checkpoint folder of a family (<c>qwen2_moe</c>, <c>qwen3_moe</c>, <c>mixtral</c>,
    /// <c>deepseek_v3</c>,
    /// <c>deepseek_v3_negative_bias</c>).</summary>
    public static string Folder(string family)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "MoeSharp.Tests", "Checkpoints", "data", family);
            if (Directory.Exists(candidate))
                return candidate;
        }
        throw new DirectoryNotFoundException(
            $"no tests/MoeSharp.Tests/Checkpoints/data/{family} above {AppContext.BaseDirectory}"
        );
    }

    /// <summary>The input x of a family's case, widened to float32.</summary>
    public static Tensor Input(string family)
    {
        Tensor x = SafetensorsFile.Read(Path.Combine(Folder(family), "input.safetensors"))["x"];
        return x.DType == DType.Float32 ? x : x.ToFloat32();
    }

    /// <summary>The reference output y of layer <paramref name="layer"/>.</summary>
    public static Tensor Expected(string family, int layer) =>
        SafetensorsFile.Read(Path.Combine(Folder(family), $"expected-layer{layer}.safetensors"))["y"];

    /// <summary>Largest absolute error over the largest absolute expected value.</summary>
    public static double RelativeError(Tensor actual, Tensor expected)
    {
        ReadOnlySpan<float> a = actual.AsSpan<float>(),
            e = expected.AsSpan<float>();
        Assert.Equal(e.Length, a.Length);
        double error = 0,
            scale = 0;
        for (int i = 0; i < a.Length; i++)
        {
            error = Math.Max(error, Math.Abs((double)a[i] - e[i]));
            scale = Math.Max(scale, Math.Abs((double)e[i]));
        }
        return error / scale;
    }
}
