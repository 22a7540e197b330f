# check: (.stdout | test("PHX_|KAFKA|REDIS|SECRET|PASSWORD|API_KEY") | not) and (.stdout | test("PATH="))
env
env | grep -q -E 'PH[X]_|KAFK[A]|REDI[S]|SECRE[T]|PASSWOR[D]|API_KE[Y]' && echo 'environment leak: SUCCEEDED'
