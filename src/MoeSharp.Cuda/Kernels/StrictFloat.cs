using System.Runtime.CompilerServices;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Float32 multiply and add that are rounded separately on every accelerator: never contracted into a fused
/// multiply-add. Kernels are generic over the implementation, and each accelerator loads the instantiation that
/// suits it (<see cref="CudaStrictFloat"/> on CUDA, <see cref="ManagedStrictFloat"/> elsewhere).
/// </summary>
/// <remarks>
/// Why: ILGPU 1.5.3's PTX backend emits plain <c>mul.f32</c> / <c>add.f32</c> for C# <c>a * b</c> and
/// <c>a + b</c> (ILGPU <c>Src/ILGPU/Backends/PTX/PTXInstructions.Data.cs</c> at tag v1.5.3, table
/// <c>BinaryArithmeticOperations</c>; the fast-math table adds <c>.ftz</c>, never <c>.rn</c>), and loads the PTX with
/// JIT options that only set the error log, so the driver's ptxas runs with its default <c>--fmad=true</c> and may fuse
/// a <c>mul.f32</c> feeding an <c>add.f32</c> into one FFMA (one rounding instead of two; 14 % of a probe's results
/// differed). An earlier version emitted <c>mul.rn.f32</c> / <c>add.rn.f32</c> as inline PTX, which ptxas never
/// contracts, but ILGPU passes an inline-PTX result through local memory: on an H100 that made the bfloat16 combine
/// three times slower than plain arithmetic (0.61 against 0.20 ms for the DeepSeek-like shape).
/// </remarks>
internal interface IStrictFloat
{
    /// <summary><c>a · b</c> rounded to nearest even, alone.</summary>
    float Mul(float a, float b);

    /// <summary><c>a + b</c> rounded to nearest even, alone.</summary>
    float Add(float a, float b);
}

/// <summary>
/// CUDA: the product is taken in float64 and rounded to float32 (<c>mul.f64</c>, <c>cvt.rn.f32.f64</c>); the sum is a
/// plain <c>add.f32</c>. The float64 product of two float32 values is exact (24 + 24 significant bits fit in 53), so
/// rounding it once gives the correctly rounded float32 product, bit for bit, subnormals and overflow included; and an
/// <c>add.f32</c> fed by a conversion has no multiply to contract with (checked offline by the PTX tests).
/// </summary>
internal readonly struct CudaStrictFloat : IStrictFloat
{
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Mul(float a, float b) => (float)((double)a * b);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Add(float a, float b) => a + b;
}

/// <summary>
/// ILGPU's CPU accelerator (and any non-PTX one): the plain C# operators, which .NET never contracts.
/// </summary>
internal readonly struct ManagedStrictFloat : IStrictFloat
{
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Mul(float a, float b) => a * b;

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Add(float a, float b) => a + b;
}
