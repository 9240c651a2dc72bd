using System.Runtime.CompilerServices;
using ILGPU.Runtime.Cuda;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Float32 multiply and add that are rounded separately on every accelerator: never contracted into a fused
/// multiply-add. Kernels are generic over the implementation, and each accelerator loads the instantiation that
/// suits it (<see cref="PtxStrictFloat"/> on CUDA, <see cref="ManagedStrictFloat"/> elsewhere).
/// </summary>
/// <remarks>
/// Why: ILGPU 1.5.3's PTX backend emits plain <c>mul.f32</c> / <c>add.f32</c> for C# <c>a * b</c> and
/// <c>a + b</c> (ILGPU <c>Src/ILGPU/Backends/PTX/PTXInstructions.Data.cs</c> at tag v1.5.3, lines 505 and
/// 527, table <c>BinaryArithmeticOperations</c>; the fast-math table at 640-648 adds <c>.ftz</c>, never
/// <c>.rn</c>), and loads the PTX with <c>cuModuleLoadData</c>-style JIT options that only set the error log
/// (<c>Src/ILGPU/Runtime/Cuda/CudaAPI.cs</c> lines 573-605), so the driver's ptxas runs with its default
/// <c>--fmad=true</c> and may fuse a <c>mul.f32</c> feeding an <c>add.f32</c> into one FFMA (one rounding
/// instead of two). The PTX ISA guarantees that instructions with an explicit rounding modifier
/// (<c>mul.rn.f32</c>, <c>add.rn.f32</c>) are never contracted, so on CUDA the kernels emit exactly those
/// instructions as inline PTX (<see cref="CudaAsm"/>). A single helper branching on
/// <see cref="CudaAsm.IsSupported"/> was not used: ILGPU 1.5.3 lowers that test to a constant predicate
/// (<c>setp.ne.s32 %p, 1, 1</c>) but keeps the dead plain <c>mul.f32</c> branch in the PTX, which is correct but
/// leaves the "no contractable op in the PTX" property to ptxas' dead-code elimination.
/// </remarks>
internal interface IStrictFloat
{
    /// <summary><c>a · b</c> rounded to nearest even, alone.</summary>
    float Mul(float a, float b);

    /// <summary><c>a + b</c> rounded to nearest even, alone.</summary>
    float Add(float a, float b);
}

/// <summary>
/// CUDA: inline <c>mul.rn.f32</c> / <c>add.rn.f32</c>. Kernels instantiated with this type contain no other float
/// multiply or add, so there is nothing for ptxas to contract (checked offline by the PTX tests).
/// </summary>
internal readonly struct PtxStrictFloat : IStrictFloat
{
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Mul(float a, float b)
    {
        CudaAsm.Emit("mul.rn.f32 %0, %1, %2;", out float product, a, b);
        return product;
    }

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Add(float a, float b)
    {
        CudaAsm.Emit("add.rn.f32 %0, %1, %2;", out float sum, a, b);
        return sum;
    }
}

/// <summary>ILGPU's CPU accelerator (and any non-PTX one): the plain C# operators, which .NET never contracts.</summary>
internal readonly struct ManagedStrictFloat : IStrictFloat
{
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Mul(float a, float b) => a * b;

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Add(float a, float b) => a + b;
}
