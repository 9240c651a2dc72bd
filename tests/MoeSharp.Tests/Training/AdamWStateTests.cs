using MoeSharp.Tensors;
using MoeSharp.Training;

namespace MoeSharp.Tests.Training;

/// <summary>AdamW's state export and import: a restored optimizer takes the same steps, to the bit.</summary>
public sealed class AdamWStateTests
{
    private static readonly float[][] Grads =
    [
        [0.5f, -1f, 2f],
        [0.25f, 3f, -0.5f],
        [-1f, 0.125f, 4f],
        [2f, -2f, 0.75f],
        [0.3f, 0.2f, -0.1f],
    ];

    [Fact]
    public void Restored_optimizer_continues_bitwise()
    {
        var (whole, wholeOpt) = Create();
        for (int step = 0; step < 5; step++)
            Step(whole, wholeOpt, step);

        var (first, firstOpt) = Create();
        for (int step = 0; step < 2; step++)
            Step(first, firstOpt, step);
        var moments = firstOpt.MomentsStateDict();
        Assert.Equal(["exp_avg.w", "exp_avg_sq.w"], moments.Select(kv => kv.Key));
        Assert.Equal([3], moments[0].Value.ShapeArray());

        var (resumed, resumedOpt) = Create();
        first.Value.AsSpan<float>().CopyTo(resumed.Value.AsSpan<float>());
        resumedOpt.LoadState(moments, firstOpt.StepCount);
        Assert.Equal(2, resumedOpt.StepCount);
        for (int step = 2; step < 5; step++)
            Step(resumed, resumedOpt, step);

        Assert.Equal(Bits(whole.Value), Bits(resumed.Value));
    }

    [Fact]
    public void A_missing_moment_changes_nothing_and_names_it()
    {
        var (p, opt) = Create();
        Step(p, opt, 0);
        var partial = opt.MomentsStateDict()
            .Where(kv => kv.Key != "exp_avg_sq.w")
            .Select(kv => new KeyValuePair<string, Tensor>(kv.Key, Tensor.Zeros(DType.Float32, 3)));
        var ex = Assert.Throws<InvalidDataException>(() => opt.LoadState(partial, 7, "state.safetensors"));
        Assert.Contains("exp_avg_sq.w", ex.Message);
        Assert.Contains("state.safetensors", ex.Message);
        Assert.Equal(1, opt.StepCount);
        Assert.NotEqual(0f, opt.MomentsStateDict()[0].Value.AsSpan<float>()[0]);
    }

    private static (Parameter P, AdamW Opt) Create()
    {
        var p = new Parameter("w", Tensor.FromArray([1f, -2f, 0.5f], 3));
        return (p, new AdamW([p], learningRate: 0.05f, weightDecay: 0.01f));
    }

    private static void Step(Parameter p, AdamW opt, int step)
    {
        Grads[step].CopyTo(p.Grad.AsSpan<float>());
        opt.Step();
    }

    private static int[] Bits(Tensor t) => t.AsSpan<float>().ToArray().Select(BitConverter.SingleToInt32Bits).ToArray();
}
