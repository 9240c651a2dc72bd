using System.Runtime.CompilerServices;
using ILGPU.Runtime.Cuda;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Float32 multiply and add that are rounded separately on every accelerator: never contracted into a fused
/// multiply-add.
/// </summary>
/// <remarks>
/// Why: ILGPU 1.5.3's PTX backend emits plain <c>mul.f32</c> / <c>add.f32</c> for C# <c>a * b</c> and
/// <c>a + b</c> (ILGPU <c>Src/ILGPU/Backends/PTX/PTXInstructions.Data.cs</c> at tag v1.5.3, lines 505 and
/// 527, table <c>BinaryArithmeticOperations</c>; the fast-math table at 640-648 adds <c>.ftz</c>, never
/// <c>.rn</c>), and loads the PTX with <c>cuModuleLoadData</c>-style JIT options that only set the error log
/// (<c>Src/ILGPU/Runtime/Cuda/CudaAPI.cs</c> lines 573-605), so the driver's ptxas runs with its default
/// <c>--fmad=true</c> and may fuse a <c>mul.f32</c> feeding an <c>add.f32</c> into one FFMA (one rounding
/// instead of two). The PTX ISA guarantees that instructions with an explicit rounding modifier
/// (<c>mul.rn.f32</c>, <c>add.rn.f32</c>) are never contracted, so on CUDA these helpers emit exactly those
/// instructions as inline PTX (<see cref="CudaAsm"/>). <see cref="CudaAsm.IsSupported"/> is folded to a
/// constant when a kernel is compiled, so ILGPU's CPU accelerator runs the plain C# operators, which .NET
/// never contracts.
/// </remarks>
internal static class StrictFloat
{
    /// <summary><c>a · b</c> rounded to nearest even, alone.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Mul(float a, float b)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("mul.rn.f32 %0, %1, %2;", out float product, a, b);
            return product;
        }
        return a * b;
    }

    /// <summary><c>a + b</c> rounded to nearest even, alone.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Add(float a, float b)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("add.rn.f32 %0, %1, %2;", out float sum, a, b);
            return sum;
        }
        return a + b;
    }
}
