using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>The optimizer's kernel: one AdamW update of a parameter with its moment estimates.</summary>
public interface IOptimizerKernels
{
    /// <summary>
    /// One AdamW update of <paramref name="value"/> in place with its moment estimates, in PyTorch's order:
    /// <c>m = β1·m + (1−β1)·g</c>, <c>v = β2·v + (1−β2)·g·g</c>,
    /// <c>θ = θ·decay − stepSize·m / (√v / bias2Sqrt + ε)</c>.
    /// </summary>
    /// <param name="value">θ, updated in place.</param>
    /// <param name="grad">g, the gradient of the loss w.r.t. θ.</param>
    /// <param name="expAvg">m, updated in place.</param>
    /// <param name="expAvgSq">v, updated in place.</param>
    /// <param name="scalars">The step's scalars.</param>
    void AdamWStep(Tensor value, Tensor grad, Tensor expAvg, Tensor expAvgSq, AdamWScalars scalars);

    /// <summary>Whether <see cref="AdamWStep(Tensor, Tensor, Tensor, Tensor, AdamWScalars, BFloat16CopyLayout)"/>
    /// is offered (a device whose padded experts read bfloat16 weights).</summary>
    bool WritesBFloat16Copies => false;

    /// <summary>
    /// <see cref="AdamWStep(Tensor, Tensor, Tensor, Tensor, AdamWScalars)"/> (the same float32 bits) that also writes
    /// each updated value rounded to bfloat16 into <paramref name="copy"/>, in the same pass.
    /// </summary>
    /// <param name="value">θ, updated in place.</param>
    /// <param name="grad">g, the gradient of the loss w.r.t. θ.</param>
    /// <param name="expAvg">m, updated in place.</param>
    /// <param name="expAvgSq">v, updated in place.</param>
    /// <param name="scalars">The step's scalars.</param>
    /// <param name="copy">Where the bfloat16 values go.</param>
    /// <exception cref="NotSupportedException"><see cref="WritesBFloat16Copies"/> is false.</exception>
    void AdamWStep(
        Tensor value,
        Tensor grad,
        Tensor expAvg,
        Tensor expAvgSq,
        AdamWScalars scalars,
        BFloat16CopyLayout copy
    ) => throw new NotSupportedException($"{GetType().Name} does not write bfloat16 weight copies");

    /// <summary>
    /// One AdamW update of every parameter in <paramref name="parameters"/>, each with the bits of
    /// <see cref="AdamWStep(Tensor, Tensor, Tensor, Tensor, AdamWScalars)"/> (and its bfloat16 copy written where
    /// <see cref="AdamWTensors.Copy"/> is set): a device runs them as one multi-tensor kernel. By default, one step
    /// per parameter.
    /// </summary>
    /// <param name="parameters">The parameters with their gradients and moments.</param>
    /// <param name="scalars">The step's scalars.</param>
    /// <exception cref="NotSupportedException">A copy is asked for and <see cref="WritesBFloat16Copies"/> is
    /// false.</exception>
    void AdamWSteps(IReadOnlyList<AdamWTensors> parameters, AdamWScalars scalars)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        foreach (AdamWTensors p in parameters)
        {
            if (p.Copy is { } copy)
                AdamWStep(p.Value, p.Grad, p.ExpAvg, p.ExpAvgSq, scalars, copy);
            else
                AdamWStep(p.Value, p.Grad, p.ExpAvg, p.ExpAvgSq, scalars);
        }
    }
}

/// <summary>One parameter's part of <see cref="IOptimizerKernels.AdamWSteps"/>.</summary>
/// <param name="Value">θ, updated in place.</param>
/// <param name="Grad">g, the gradient of the loss w.r.t. θ.</param>
/// <param name="ExpAvg">m, updated in place.</param>
/// <param name="ExpAvgSq">v, updated in place.</param>
/// <param name="Copy">Where the updated values also go rounded to bfloat16, or null.</param>
public readonly record struct AdamWTensors(
    Tensor Value,
    Tensor Grad,
    Tensor ExpAvg,
    Tensor ExpAvgSq,
    BFloat16CopyLayout? Copy = null
);

/// <summary>
/// Where a float32 tensor's bfloat16 copy lives inside a larger bfloat16 tensor: value element i goes to
/// <c>Target[(i / Block)·Stride + Offset + i mod Block]</c>, so blocks of <see cref="Block"/> values are spread
/// <see cref="Stride"/> apart (e.g. w1 and w3 <c>[E, H, D]</c> interleaved per expert into <c>[E, 2H, D]</c>:
/// Block = H·D, Stride = 2H·D, Offset 0 for w1 and H·D for w3).
/// </summary>
/// <param name="Target">bfloat16 tensor written.</param>
/// <param name="Block">Contiguous values per block, &gt; 0.</param>
/// <param name="Stride">Distance between blocks in the target, ≥ Block.</param>
/// <param name="Offset">Where the first block starts in the target, ≥ 0.</param>
public readonly record struct BFloat16CopyLayout(Tensor Target, int Block, int Stride, int Offset)
{
    /// <summary>Checks that <paramref name="values"/> float32 values fit the target in this layout.</summary>
    /// <param name="values">Element count of the source.</param>
    /// <exception cref="ArgumentException">The layout is malformed or runs past the target.</exception>
    public void CheckFits(long values)
    {
        if (
            Target is null
            || Target.DType != DType.BFloat16
            || Block <= 0
            || Stride < Block
            || Offset < 0
            || values % Block != 0
            || (values == 0 ? 0 : ((values / Block) - 1) * Stride + Offset + Block) > Target.ElementCount
        )
        {
            throw new ArgumentException(
                $"bfloat16 copy layout (block {Block}, stride {Stride}, offset {Offset}) does not hold {values} "
                    + $"values in {Target}",
                nameof(values)
            );
        }
    }
}

/// <summary>The scalars of one AdamW step (bias corrections folded in).</summary>
/// <param name="Beta1">β1, the first moment's decay rate.</param>
/// <param name="Beta2">β2, the second moment's decay rate.</param>
/// <param name="StepSize">lr / (1 − β1^t).</param>
/// <param name="Bias2Sqrt">√(1 − β2^t).</param>
/// <param name="Epsilon">ε, keeps the denominator away from zero.</param>
/// <param name="Decay">1 − lr·weight decay.</param>
public readonly record struct AdamWScalars(
    float Beta1,
    float Beta2,
    float StepSize,
    float Bias2Sqrt,
    float Epsilon,
    float Decay
);
